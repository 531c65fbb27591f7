"""review: indexes for pruning the processed-event ids."""

# Revision e2f3a4b5c6d7, after b7c41d2e9f30.

from shared.pruning import PROCESSED_EVENTS_INDEX, index_migration

revision = "e2f3a4b5c6d7"
down_revision = "b7c41d2e9f30"
upgrade, downgrade = index_migration(PROCESSED_EVENTS_INDEX)
