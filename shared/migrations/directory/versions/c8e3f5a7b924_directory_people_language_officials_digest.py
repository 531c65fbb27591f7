"""directory: a person's language for e-mail, an official's daily digest (issue 21)

Company staff are e-mailed in the language they chose (`people.language`, English until
they choose); officials keep theirs in `officials.language` (the console's), and may opt in
to a daily e-mail of their side's cases due and overdue (`officials.digest`).

Revision ID: c8e3f5a7b924
Revises: b7d2e4f6a813
Create Date: 2026-12-01 15:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "c8e3f5a7b924"
down_revision: str | None = "b7d2e4f6a813"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "language",
                sqlmodel.sql.sqltypes.AutoString(length=35),
                nullable=False,
                server_default="en",
            )
        )
    with op.batch_alter_table("officials", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("digest", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("officials", schema=None) as batch_op:
        batch_op.drop_column("digest")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("language")
