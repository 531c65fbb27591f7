"""Notify's queries for the routes and the event handler: endpoints, messages, deliveries.

The delivery worker's statements are apart: the claim in `claims.py`, the recording of
attempts in `records.py`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from services.notify.domain import payloads
from services.notify.store.tables import (
    ACTIVE,
    CANCELLED,
    DISABLED,
    PENDING,
    WEBHOOK,
    Attempt,
    Delivery,
    Message,
    WebhookEndpoint,
    new_id,
)
from shared.db import utcnow


def own_endpoint(session: Session, company_id: str, endpoint_id: str) -> WebhookEndpoint | None:
    """The webhook endpoint if it belongs to the company and is not deleted; else as if
    absent (a person's e-mail endpoint is the person's, kept by store/recipients.py)."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if (
        endpoint is None
        or endpoint.company_id != company_id
        or endpoint.deleted_at is not None
        or endpoint.channel != WEBHOOK
    ):
        return None
    return endpoint


def own_delivery(session: Session, company_id: str, delivery_id: str) -> Delivery | None:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.company_id != company_id:
        return None
    endpoint = own_endpoint(session, company_id, delivery.endpoint_id)
    return delivery if endpoint is not None else None


def _webhooks_of(company_id: str) -> Any:
    return (
        WebhookEndpoint.company_id == company_id,
        WebhookEndpoint.channel == WEBHOOK,
        col(WebhookEndpoint.deleted_at).is_(None),
    )


def count_endpoints(session: Session, company_id: str) -> int:
    query = select(WebhookEndpoint.id).where(*_webhooks_of(company_id))
    return len(session.exec(query).all())


def list_endpoints(
    session: Session, company_id: str, after: tuple[datetime, str] | None, limit: int
) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(*_webhooks_of(company_id))
    if after is not None:
        at, last_id = after
        query = query.where(
            (col(WebhookEndpoint.created_at) < at)
            | ((col(WebhookEndpoint.created_at) == at) & (col(WebhookEndpoint.id) < last_id))
        )
    query = query.order_by(col(WebhookEndpoint.created_at).desc(), col(WebhookEndpoint.id).desc())
    return list(session.exec(query.limit(limit)).all())


# Company ids per query when reading the endpoints of a batch of messages.
CHUNK = 500
_ENDPOINTS: Any = WebhookEndpoint.__table__  # type: ignore[attr-defined]
# Built once, on the table (the ORM's execution path costs more than the query).
_ENDPOINTS_OF = sa_select(_ENDPOINTS.c.id, _ENDPOINTS.c.company_id, _ENDPOINTS.c.event_types).where(
    _ENDPOINTS.c.company_id.in_(bindparam("companies", expanding=True)),
    _ENDPOINTS.c.status == ACTIVE,
    _ENDPOINTS.c.deleted_at.is_(None),
)
_WEBHOOK_ENDPOINTS_OF = _ENDPOINTS_OF.where(_ENDPOINTS.c.channel == WEBHOOK)


def add_messages(
    session: Session,
    items: Sequence[tuple[payloads.WebhookMessage, datetime]],
    now: datetime,
    email: bool = True,
) -> None:
    """Store messages and schedule each for its company's active, subscribed endpoints
    (the webhook endpoints only, without `email`: SMTP is not configured).

    Three statements whatever the number of messages: the companies' endpoints, the
    messages (their numbers returned in order), the deliveries. A message is kept even when
    no endpoint takes it, for recovery (`messages_since`) and endpoints registered later.
    """
    companies = sorted({message.company_id for message, _time in items})
    endpoints: dict[str, list[tuple[str, list[str]]]] = {}
    query = _ENDPOINTS_OF if email else _WEBHOOK_ENDPOINTS_OF
    for start in range(0, len(companies), CHUNK):
        chunk = {"companies": companies[start : start + CHUNK]}
        for endpoint_id, company_id, event_types in session.execute(query, chunk):
            endpoints.setdefault(company_id, []).append((endpoint_id, event_types))
    messages, deliveries_table = Message.__table__, Delivery.__table__  # type: ignore[attr-defined]
    rows = [_message_row(message, event_time, now) for message, event_time in items]
    seqs = session.execute(
        insert(messages).returning(messages.c.seq, sort_by_parameter_order=True), rows
    ).scalars()
    deliveries = [
        _delivery_row(seq, row, endpoint_id, now)
        for seq, row in zip(seqs, rows, strict=True)
        for endpoint_id, event_types in endpoints.get(row["company_id"], [])
        if row["type"] in event_types
    ]
    if deliveries:
        session.execute(insert(deliveries_table), deliveries)


def _message_row(
    message: payloads.WebhookMessage, event_time: datetime, now: datetime
) -> dict[str, Any]:
    data = message.body.get("data")
    application_id = data.get("application_id") if isinstance(data, dict) else None
    return {
        "event_id": message.event_id,
        "company_id": message.company_id,
        "application_id": application_id if isinstance(application_id, str) else None,
        "type": message.type,
        "body": message.encoded().decode(),
        "event_time": event_time,
        "created_at": now,
        "traceparent": message.traceparent,
    }


def add_message(
    session: Session, message: payloads.WebhookMessage, event_time: datetime
) -> Message:
    """One message, as an ORM row (a test event; the consumer stores with `add_messages`)."""
    row = Message(**_message_row(message, event_time, utcnow()))
    session.add(row)
    session.flush()
    return row


def schedule(
    session: Session, message: Message, endpoint: WebhookEndpoint, now: datetime
) -> Delivery:
    """A new delivery of the message to the endpoint, due at once."""
    assert message.seq is not None
    delivery = Delivery(**_delivery_row(message.seq, message.model_dump(), endpoint.id, now))
    session.add(delivery)
    return delivery


def _delivery_row(
    seq: int, message: dict[str, Any], endpoint_id: str, now: datetime
) -> dict[str, Any]:
    """A pending delivery of a message (its row's fields) to an endpoint, due at once."""
    return {
        "id": new_id(),
        "message_seq": seq,
        "endpoint_id": endpoint_id,
        "company_id": message["company_id"],
        "webhook_id": payloads.message_id(message["event_id"], endpoint_id),
        "event_type": message["type"],
        "application_id": message["application_id"],
        "event_time": message["event_time"],
        "status": PENDING,
        "attempt_count": 0,
        "round_attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def reschedule(delivery: Delivery, now: datetime) -> None:
    """Send a finished delivery again from the start of the retry schedule, same webhook-id."""
    delivery.status = PENDING
    delivery.round_attempts = 0
    delivery.next_attempt_at = now
    delivery.updated_at = now


def disable_endpoint(
    session: Session, endpoint: WebhookEndpoint, reason: str, now: datetime
) -> None:
    """Switch an endpoint off and stop what is still waiting to go to it."""
    endpoint.status = DISABLED
    endpoint.disabled_reason = reason
    endpoint.disabled_at = now
    endpoint.updated_at = now
    session.add(endpoint)
    cancel_pending(session, endpoint.id, now)


def cancel_pending(session: Session, endpoint_id: str, now: datetime) -> None:
    # Rows are locked in id order first, as every transaction that locks several deliveries
    # does (the worker's recorder updates them in primary-key order): no deadlock cycle.
    free = (
        select(Delivery.id)
        .where(col(Delivery.endpoint_id) == endpoint_id, col(Delivery.status) == PENDING)
        .where(col(Delivery.lease_until).is_(None) | (col(Delivery.lease_until) < now))
        .order_by(col(Delivery.id))
        .with_for_update()
    )
    ids = list(session.exec(free).all())
    if ids:
        session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(ids), col(Delivery.status) == PENDING)
            .values(status=CANCELLED, next_attempt_at=None, updated_at=now)
        )


def list_deliveries(
    session: Session,
    endpoint_id: str,
    status: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[tuple[Delivery, Message]]:
    query = (
        select(Delivery, Message)
        .join(Message, col(Message.seq) == col(Delivery.message_seq))
        .where(Delivery.endpoint_id == endpoint_id)
    )
    if status is not None:
        query = query.where(Delivery.status == status)
    if after is not None:
        at, last_id = after
        query = query.where(
            (col(Delivery.created_at) < at)
            | ((col(Delivery.created_at) == at) & (col(Delivery.id) < last_id))
        )
    query = query.order_by(col(Delivery.created_at).desc(), col(Delivery.id).desc()).limit(limit)
    return [(d, m) for d, m in session.exec(query).all()]


def attempts_of(session: Session, delivery_ids: list[str]) -> dict[str, list[Attempt]]:
    found: dict[str, list[Attempt]] = {i: [] for i in delivery_ids}
    if not delivery_ids:
        return found
    query = (
        select(Attempt)
        .where(col(Attempt.delivery_id).in_(delivery_ids))
        .order_by(col(Attempt.delivery_id), col(Attempt.number))
    )
    for attempt in session.exec(query).all():
        found[attempt.delivery_id].append(attempt)
    return found


def messages_since(
    session: Session, company_id: str, since: datetime, types: list[str]
) -> list[Message]:
    query = (
        select(Message)
        .where(
            Message.company_id == company_id,
            col(Message.event_time) >= since,
            col(Message.type).in_(types),
        )
        .order_by(col(Message.event_time), col(Message.seq))
    )
    return list(session.exec(query).all())


def deliveries_since(session: Session, endpoint_id: str, since: datetime) -> dict[int, Delivery]:
    """The endpoint's deliveries of messages from `since` on, by message."""
    query = (
        select(Delivery)
        .where(Delivery.endpoint_id == endpoint_id, col(Delivery.event_time) >= since)
        .order_by(col(Delivery.id))  # locked in id order, like every multi-row locker here
        .with_for_update()
    )
    return {d.message_seq: d for d in session.exec(query).all()}


def body_of(message: Message) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(message.body)
    return parsed
