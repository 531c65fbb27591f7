"""review: case_counts also by whether production stops before the expected decision

The EU metrics summary's `backlog.stopping_before_decision` was a count over the whole
`cases` table on every request (966 ms at p99 at 1,000,000 cases, docs/benchmarks.md); it is
now read off case_counts, which gains the fourth key column. The table is a projection: it is
made again with the new key and recounted from the cases, as 61703395a50f first did.

Revision ID: b3c4d5e6f7a8
Revises: d4e5f6a7b8c9
Create Date: 2026-12-01 16:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "b3c4d5e6f7a8"
down_revision: str | None = "d4e5f6a7b8c9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# domain/priority.py: stops_before_decision (a missing date never stops before).
_STOPS = (
    "CASE WHEN production_stop_date < expected_decision_date THEN TRUE ELSE FALSE END"
)


def _create(with_stops: bool) -> None:
    columns = [
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("tier", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
        sa.Column("sent_to_cn", sa.Boolean(), nullable=False),
    ]
    key = ["state", "tier", "sent_to_cn"]
    if with_stops:
        columns.append(sa.Column("stops_before_decision", sa.Boolean(), nullable=False))
        key.append("stops_before_decision")
    op.create_table(
        "case_counts",
        *columns,
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*key),
    )
    stops = f", {_STOPS}" if with_stops else ""
    named = ", stops_before_decision" if with_stops else ""
    op.execute(
        f"INSERT INTO case_counts (state, tier, sent_to_cn{named}, cases) "
        f"SELECT state, tier, sent_to_cn_at IS NOT NULL{stops}, count(*) FROM cases "
        f"GROUP BY state, tier, sent_to_cn_at IS NOT NULL{stops}"
    )


def upgrade() -> None:
    op.drop_table("case_counts")
    _create(with_stops=True)


def downgrade() -> None:
    op.drop_table("case_counts")
    _create(with_stops=False)
