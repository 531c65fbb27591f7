"""Notify's subscribers: each applicant-relevant event becomes one message and its deliveries.

The handler runs in the consumer's transaction, the one that also records the event id, so
an event read twice schedules its deliveries once. It only builds the message; `write`, the
consumer's finish hook, stores every message of the read and schedules their deliveries in
a few statements (a priority list moves thousands of cases at once).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlmodel import Session

from services.notify import store
from services.notify.domain import payloads
from shared import tracing
from shared.consumer import Handler
from shared.db import utcnow
from shared.events import CloudEvent

_PENDING = "notify.pending_messages"


def record_event(session: Session, event: CloudEvent) -> None:
    """Build the company's webhook message; `write` stores it before the commit."""
    message = payloads.to_webhook_message(event.model_dump())
    if message is None:
        return
    pending: list[tuple[payloads.WebhookMessage, datetime]]
    pending = session.info.setdefault(_PENDING, [])
    # The attempts' spans join the trace of this event's handling (stored with the message).
    pending.append((replace(message, traceparent=tracing.current_traceparent()), event.time))


def write(session: Session) -> None:
    """Store the messages the handlers built in this transaction, with their deliveries."""
    pending = session.info.pop(_PENDING, [])
    if pending:
        store.add_messages(session, pending, utcnow())


INTAKE_HANDLERS: dict[str, Handler] = {"application.submitted": record_event}
REVIEW_HANDLERS: dict[str, Handler] = {
    "case.state_changed": record_event,
    "case.information_requested": record_event,
    "case.information_reminder": record_event,
    "case.acknowledged": record_event,
    "case.decided": record_event,
    "licence.issued": record_event,
    "licence.revoked": record_event,
}
