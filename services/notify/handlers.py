"""Notify's subscribers: each applicant-relevant event becomes one message and its deliveries.

The handler runs in the consumer's transaction, the one that also records the event id, so
an event read twice schedules its deliveries once.
"""

from __future__ import annotations

from sqlmodel import Session

from services.notify import store
from services.notify.domain import payloads
from shared.consumer import Handler
from shared.db import utcnow
from shared.events import CloudEvent


def record_event(session: Session, event: CloudEvent) -> None:
    """Keep the company's webhook message and schedule it for each subscribed endpoint."""
    message = payloads.to_webhook_message(event.model_dump())
    if message is None:
        return
    row = store.add_message(session, message, event.time)
    now = utcnow()
    for endpoint in store.subscribed_endpoints(session, message.company_id, message.type):
        store.schedule(session, row, endpoint, now)


INTAKE_HANDLERS: dict[str, Handler] = {"application.submitted": record_event}
REVIEW_HANDLERS: dict[str, Handler] = {
    "case.state_changed": record_event,
    "case.information_requested": record_event,
    "case.decided": record_event,
    "licence.issued": record_event,
}
