"""directory: officials' language (the console's language each official chose)

Issue 19: the console is offered in English and Simplified Chinese; an official's choice is
kept with the official (keyed by the official's id, which a person's account shares), so it
follows them whether they sign in with a token or a personal account.

Revision ID: b7d2e4f6a813
Revises: 5b2e7d9c4a17
Create Date: 2026-12-01 12:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "b7d2e4f6a813"
down_revision: str | None = "5b2e7d9c4a17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("officials", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=35), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("officials", schema=None) as batch_op:
        batch_op.drop_column("language")
