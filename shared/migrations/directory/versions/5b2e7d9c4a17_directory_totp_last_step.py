"""directory: the time-step of each person's last TOTP code, so that a code is used once

Revision ID: 5b2e7d9c4a17
Revises: 3f6c1a2b9d40
Create Date: 2026-12-01 12:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "5b2e7d9c4a17"
down_revision = "3f6c1a2b9d40"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")
