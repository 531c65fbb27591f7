"""Notify's subscribers: each applicant-relevant event becomes one message and its deliveries.

The handler runs in the consumer's transaction, the one that also records the event id, so
an event read twice schedules its deliveries once. It only builds the message; the
consumer's finish hook (`writer`) stores every message of the read and schedules their
deliveries in a few statements (a priority list moves thousands of cases at once), to the
companies' webhook endpoints and, with e-mail on, to their people's e-mail endpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.notify import store
from services.notify.domain import payloads
from services.notify.store import recipients
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


def writer(directory: Engine | None) -> Callable[[Session], None]:
    """The finish hook: store the messages the handlers built in this transaction, with
    their deliveries. With e-mail on (`directory`, whose people it reads), the companies'
    e-mail endpoints are first kept in step with their staff (store/recipients.py)."""

    def write(session: Session) -> None:
        pending: list[tuple[payloads.WebhookMessage, datetime]] = session.info.pop(_PENDING, [])
        if not pending:
            return
        now = utcnow()
        if directory is not None:
            companies = {message.company_id for message, _time in pending}
            staff = recipients.staff_of(directory, companies)
            recipients.keep_in_step(session, companies, staff, now)
        store.add_messages(session, pending, now, email=directory is not None)

    return write


INTAKE_HANDLERS: dict[str, Handler] = {"application.submitted": record_event}
REVIEW_HANDLERS: dict[str, Handler] = {
    "case.state_changed": record_event,
    "case.information_requested": record_event,
    "case.information_reminder": record_event,
    "case.acknowledged": record_event,
    "case.decided": record_event,
    "licence.issued": record_event,
    "licence.revoked": record_event,
    "licence.shipment_recorded": record_event,
}
