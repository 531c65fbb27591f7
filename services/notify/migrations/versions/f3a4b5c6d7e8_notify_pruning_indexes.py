"""notify: indexes for pruning the processed-event ids and the delivery log."""

# Revision f3a4b5c6d7e8, after 3ac102fbb9c6.

from services.notify.store.log_retention import MESSAGES_INDEX
from shared.pruning import PROCESSED_EVENTS_INDEX, index_migration

revision = "f3a4b5c6d7e8"
down_revision = "3ac102fbb9c6"
upgrade, downgrade = index_migration(PROCESSED_EVENTS_INDEX, MESSAGES_INDEX)
