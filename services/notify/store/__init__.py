"""Notify's store: its tables, and every statement notify runs on them.

- `tables.py`: the tables (endpoints, messages, deliveries, attempts) and their statuses;
- `queries.py`: what the routes and the event handler read and write;
- `claims.py`: the delivery worker's claim of due deliveries and their leases;
- `records.py`: the recording of finished attempts and of endpoints' health.

The tables' and the queries' names are re-exported here, so `store.Delivery` or
`store.own_endpoint` read as before the store became a package.
"""

from services.notify.store.queries import (
    CHUNK,
    add_message,
    add_messages,
    attempts_of,
    body_of,
    cancel_pending,
    count_endpoints,
    deliveries_since,
    disable_endpoint,
    list_deliveries,
    list_endpoints,
    messages_since,
    own_delivery,
    own_endpoint,
    reschedule,
    schedule,
)
from services.notify.store.tables import (
    ACTIVE,
    CANCELLED,
    DELIVERY_STATUSES,
    DISABLED,
    FAILED,
    NOTIFY_TABLES,
    PENDING,
    SUCCEEDED,
    Attempt,
    Delivery,
    Message,
    WebhookEndpoint,
    new_id,
    signing_secrets,
)

__all__ = [
    "ACTIVE",
    "CANCELLED",
    "CHUNK",
    "DELIVERY_STATUSES",
    "DISABLED",
    "FAILED",
    "NOTIFY_TABLES",
    "PENDING",
    "SUCCEEDED",
    "Attempt",
    "Delivery",
    "Message",
    "WebhookEndpoint",
    "add_message",
    "add_messages",
    "attempts_of",
    "body_of",
    "cancel_pending",
    "count_endpoints",
    "deliveries_since",
    "disable_endpoint",
    "list_deliveries",
    "list_endpoints",
    "messages_since",
    "new_id",
    "own_delivery",
    "own_endpoint",
    "reschedule",
    "schedule",
    "signing_secrets",
]
