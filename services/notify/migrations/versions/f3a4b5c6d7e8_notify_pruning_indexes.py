"""notify: indexes for pruning the processed-event ids and the delivery log

Revision ID: f3a4b5c6d7e8
Revises: 3ac102fbb9c6
Create Date: 2026-12-01 10:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "f3a4b5c6d7e8"
down_revision: str | None = "3ac102fbb9c6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # shared/pruning.py deletes the oldest rows in batches; without these it reads every row.
    with op.batch_alter_table("processed_events", schema=None) as batch_op:
        batch_op.create_index("ix_processed_events_time", ["processed_at"], unique=False)
    with op.batch_alter_table("webhook_messages", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_messages_created", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_messages_created")
    with op.batch_alter_table("processed_events", schema=None) as batch_op:
        batch_op.drop_index("ix_processed_events_time")
