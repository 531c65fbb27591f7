"""Notify's tables and queries: endpoints, the messages of each company, deliveries, attempts.

A `Message` is one webhook body for one company, stored once whatever the number of
endpoints. A `Delivery` is that message for one endpoint: its status and the schedule of
its next attempt live here, in the database, so a restart loses no retry. An `Attempt` is
one HTTP request of a delivery, the row the delivery log shows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    insert,
    update,
)
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col, select

from services.notify.domain import payloads
from shared.db import utcnow
from shared.outbox import OUTBOX_TABLES

ACTIVE = "active"
DISABLED = "disabled"

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
# Stopped without an answer: its endpoint was disabled or deleted before it could be sent.
CANCELLED = "cancelled"
DELIVERY_STATUSES = (PENDING, SUCCEEDED, FAILED, CANCELLED)


def new_id() -> str:
    return str(uuid.uuid4())


class WebhookEndpoint(SQLModel, table=True):
    """A company's URL that receives webhooks of the types it subscribed to."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_company", "company_id", "created_at", "id"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    company_id: str = Field(max_length=36)
    url: str = Field(max_length=2048)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] = Field(sa_column=Column(JSON, nullable=False))
    # Kept in clear because every delivery is signed with it; see docs/notify.md.
    secret: str = Field(max_length=100)
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_expires_at: datetime | None = None
    status: str = Field(default=ACTIVE, max_length=20)
    disabled_reason: str | None = Field(default=None, max_length=500)
    disabled_at: datetime | None = None
    # The first failed attempt since the endpoint's last success (the endpoint-health rule).
    failing_since: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    deleted_at: datetime | None = None

    def signing_secrets(self, now: datetime) -> list[str]:
        """The current secret, and the previous one while its grace period lasts."""
        return signing_secrets(
            self.secret, self.previous_secret, self.previous_secret_expires_at, now
        )


def signing_secrets(
    secret: str, previous: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """The current secret, and the previous one while its grace period lasts."""
    secrets = [secret]
    if previous and previous_expires_at is not None and previous_expires_at > now:
        secrets.append(previous)
    return secrets


class Message(SQLModel, table=True):
    """One webhook body for one company, built once from one internal event."""

    __tablename__ = "webhook_messages"
    __table_args__ = (Index("ix_webhook_messages_company_time", "company_id", "event_time"),)

    seq: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64, unique=True)
    company_id: str = Field(max_length=36)
    application_id: str | None = Field(default=None, max_length=36)
    type: str = Field(max_length=60)
    # The exact bytes that are signed and sent (UTF-8 JSON), so every attempt sends the same.
    body: str = Field(sa_column=Column(Text, nullable=False))
    event_time: datetime
    created_at: datetime = Field(default_factory=utcnow)


class Delivery(SQLModel, table=True):
    """One message for one endpoint: its status and when it is next tried."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("message_seq", "endpoint_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index(
            "ix_webhook_deliveries_chain", "endpoint_id", "application_id", "status", "event_time"
        ),
        Index("ix_webhook_deliveries_log", "endpoint_id", "created_at", "id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    message_seq: int = Field(sa_column=Column(ForeignKey("webhook_messages.seq"), nullable=False))
    endpoint_id: str = Field(
        sa_column=Column(String(36), ForeignKey("webhook_endpoints.id"), nullable=False)
    )
    company_id: str = Field(max_length=36)
    # The `webhook-id` header: the same on every attempt, redelivery and recovery.
    webhook_id: str = Field(max_length=64)
    event_type: str = Field(max_length=60)
    # Deliveries of one application to one endpoint go out in event order (see worker.py).
    application_id: str | None = Field(default=None, max_length=36)
    event_time: datetime
    status: str = Field(default=PENDING, max_length=20)
    attempt_count: int = 0
    # Attempts since the delivery was last (re)scheduled: the position in the retry schedule.
    round_attempts: int = 0
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    lease_owner: str | None = Field(default=None, max_length=100)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    succeeded_at: datetime | None = None


class Attempt(SQLModel, table=True):
    """One HTTP request of a delivery, as the delivery log shows it."""

    __tablename__ = "webhook_attempts"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(
        sa_column=Column(
            String(36), ForeignKey("webhook_deliveries.id"), nullable=False, index=True
        )
    )
    number: int
    attempted_at: datetime
    status_code: int | None = None
    duration_ms: int
    error: str | None = Field(default=None, max_length=1000)
    outcome: str = Field(max_length=20)
    next_retry_at: datetime | None = None


NOTIFY_TABLES = (
    "webhook_endpoints",
    "webhook_messages",
    "webhook_deliveries",
    "webhook_attempts",
    *OUTBOX_TABLES,
)


def own_endpoint(session: Session, company_id: str, endpoint_id: str) -> WebhookEndpoint | None:
    """The endpoint if it belongs to the company and is not deleted; else as if absent."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.company_id != company_id or endpoint.deleted_at is not None:
        return None
    return endpoint


def own_delivery(session: Session, company_id: str, delivery_id: str) -> Delivery | None:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.company_id != company_id:
        return None
    endpoint = own_endpoint(session, company_id, delivery.endpoint_id)
    return delivery if endpoint is not None else None


def count_endpoints(session: Session, company_id: str) -> int:
    query = select(WebhookEndpoint.id).where(
        WebhookEndpoint.company_id == company_id, col(WebhookEndpoint.deleted_at).is_(None)
    )
    return len(session.exec(query).all())


def list_endpoints(
    session: Session, company_id: str, after: tuple[datetime, str] | None, limit: int
) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.company_id == company_id, col(WebhookEndpoint.deleted_at).is_(None)
    )
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


def add_messages(
    session: Session, items: Sequence[tuple[payloads.WebhookMessage, datetime]], now: datetime
) -> None:
    """Store messages and schedule each for its company's active, subscribed endpoints.

    Three statements whatever the number of messages: the companies' endpoints, the
    messages (their numbers returned in order), the deliveries. A message is kept even when
    no endpoint takes it, for recovery (`messages_since`) and endpoints registered later.
    """
    companies = sorted({message.company_id for message, _time in items})
    endpoints: dict[str, list[tuple[str, list[str]]]] = {}
    for start in range(0, len(companies), CHUNK):
        chunk = {"companies": companies[start : start + CHUNK]}
        for endpoint_id, company_id, event_types in session.execute(_ENDPOINTS_OF, chunk):
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
