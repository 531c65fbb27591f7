"""notify: e-mail endpoints, one per person, beside the webhook endpoints.

Revision c7d1e5f9a2b4, after b2c3d4e5f6a8.
"""

import sqlalchemy as sa
from alembic import op

revision = "c7d1e5f9a2b4"
down_revision = "b2c3d4e5f6a8"
INDEX = "ux_webhook_endpoints_person"


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=10), server_default="webhook", nullable=False)
        )
        batch_op.add_column(sa.Column("person_id", sa.String(length=36), nullable=True))
        batch_op.create_index(INDEX, ["person_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
        batch_op.drop_column("person_id")
        batch_op.drop_column("channel")
