"""intake: indexes for pruning the processed-event ids."""

# Revision d1e2f3a4b5c6, after 2639ed4aa622.

from shared.pruning import PROCESSED_EVENTS_INDEX, index_migration

revision = "d1e2f3a4b5c6"
down_revision = "2639ed4aa622"
upgrade, downgrade = index_migration(PROCESSED_EVENTS_INDEX)
