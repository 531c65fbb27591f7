"""notify: room for the sealed signing secrets (docs/notify.md, "Secrets at rest").

The values are sealed by the service itself when it boots (store/sealed.py: reseal), which
holds the keys; a migration never sees them.
"""

# Revision b2c3d4e5f6a8, after a1b2c3d4e5f7.

import sqlalchemy as sa
from alembic import op

revision = "b2c3d4e5f6a8"
down_revision = "a1b2c3d4e5f7"


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret", type_=sa.String(255), existing_nullable=False)
        batch.alter_column("previous_secret", type_=sa.String(255), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret", type_=sa.String(100), existing_nullable=False)
        batch.alter_column("previous_secret", type_=sa.String(100), existing_nullable=True)
