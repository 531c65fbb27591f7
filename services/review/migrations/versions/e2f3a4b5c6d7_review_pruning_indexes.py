"""review: indexes for pruning the processed-event ids

Revision ID: e2f3a4b5c6d7
Revises: b7c41d2e9f30
Create Date: 2026-12-01 10:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e2f3a4b5c6d7"
down_revision: str | None = "b7c41d2e9f30"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # shared/pruning.py deletes the oldest rows in batches; without these it reads every row.
    with op.batch_alter_table("processed_events", schema=None) as batch_op:
        batch_op.create_index("ix_processed_events_time", ["processed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("processed_events", schema=None) as batch_op:
        batch_op.drop_index("ix_processed_events_time")
