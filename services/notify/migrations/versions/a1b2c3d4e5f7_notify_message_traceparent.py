"""notify: each message keeps the trace context of its event, for the attempts' spans."""

# Revision a1b2c3d4e5f7, after f3a4b5c6d7e8.

import sqlalchemy as sa
from alembic import op

revision = "a1b2c3d4e5f7"
down_revision = "f3a4b5c6d7e8"


def upgrade() -> None:
    op.add_column("webhook_messages", sa.Column("traceparent", sa.String(55), nullable=True))


def downgrade() -> None:
    op.drop_column("webhook_messages", "traceparent")
