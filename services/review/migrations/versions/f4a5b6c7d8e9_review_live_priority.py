"""review: live priority (the day each case was last scored, its production stop date, the
adopted priority rule sets)

Revision ID: f4a5b6c7d8e9
Revises: e2f3a4b5c6d7
Create Date: 2026-12-01 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "f4a5b6c7d8e9"
down_revision: str | None = "e2f3a4b5c6d7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The applicant's production stop date, out of the application's JSON (a date intake checked).
_BACKFILL = {
    "postgresql": (
        "UPDATE cases SET production_stop_date ="
        " CAST(application -> 'urgency' ->> 'production_stop_date' AS DATE)"
        " WHERE application -> 'urgency' ->> 'production_stop_date' IS NOT NULL"
    ),
    "sqlite": (
        "UPDATE cases SET production_stop_date ="
        " json_extract(application, '$.urgency.production_stop_date')"
        " WHERE json_extract(application, '$.urgency.production_stop_date') IS NOT NULL"
    ),
}


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scored_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("production_stop_date", sa.Date(), nullable=True))
    op.execute(_BACKFILL[op.get_bind().dialect.name])
    op.create_table(
        "priority_rule_sets",
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("adopted_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("adopted_by_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("adopted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    with op.batch_alter_table("priority_rule_sets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_priority_rule_sets_adopted_at"), ["adopted_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("priority_rule_sets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_priority_rule_sets_adopted_at"))
    op.drop_table("priority_rule_sets")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("production_stop_date")
        batch_op.drop_column("scored_on")
