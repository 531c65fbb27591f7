"""review: the officials' daily digests, one row per official and day (issue 21)

Revision ID: a1d9e3c5b7f2
Revises: b3c4d5e6f7a8
Create Date: 2026-12-01 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "a1d9e3c5b7f2"
down_revision: str | None = "b3c4d5e6f7a8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digests",
        sa.Column("official_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("claimed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.PrimaryKeyConstraint("official_id", "day"),
    )


def downgrade() -> None:
    op.drop_table("digests")
