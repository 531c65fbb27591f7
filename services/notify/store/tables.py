"""Notify's tables: endpoints, the messages of each company, deliveries, attempts.

An endpoint is a company's webhook URL, or one of its people's e-mail address (channel
`email`, a `mailto:` URL, one per person: services/notify/email.py), so that both channels
share the deliveries' persisted retries, ordering and log.

A `Message` is one webhook body for one company, stored once whatever the number of
endpoints. A `Delivery` is that message for one endpoint: its status and the schedule of
its next attempt live here, in the database, so a restart loses no retry. An `Attempt` is
one HTTP request of a delivery, the row the delivery log shows.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

# The endpoint statuses belong to the endpoint-health rule; they are stored here.
from services.notify.domain.health import ACTIVE as ACTIVE
from services.notify.domain.health import DISABLED as DISABLED
from services.notify.store.sealed import SealedSecret
from shared.db import utcnow
from shared.outbox import OUTBOX_TABLES

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
# Stopped without an answer: its endpoint was disabled or deleted before it could be sent.
CANCELLED = "cancelled"
DELIVERY_STATUSES = (PENDING, SUCCEEDED, FAILED, CANCELLED)
PERSON_INDEX = "ux_webhook_endpoints_person"
# An endpoint's channel.
WEBHOOK = "webhook"
EMAIL = "email"


def new_id() -> str:
    return str(uuid.uuid4())


class WebhookEndpoint(SQLModel, table=True):
    """A company's URL that receives webhooks of the types it subscribed to."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        Index("ix_webhook_endpoints_company", "company_id", "created_at", "id"),
        Index(PERSON_INDEX, "person_id", unique=True),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    company_id: str = Field(max_length=36)
    channel: str = Field(
        default=WEBHOOK, max_length=10, sa_column_kwargs={"server_default": WEBHOOK}
    )
    # The person an e-mail endpoint writes to (shared/accounts/ people); None for a webhook.
    person_id: str | None = Field(default=None, max_length=36)
    url: str = Field(max_length=2048)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] = Field(sa_column=Column(JSON, nullable=False))
    # Sealed at rest (AES-256-GCM, store/sealed.py): every delivery is signed with it, so it
    # is kept, but never in clear; see docs/notify.md, "Secrets at rest". (An e-mail
    # endpoint has one too, unused: the column is required.)
    secret: str = Field(sa_column=Column(SealedSecret(), nullable=False))
    previous_secret: str | None = Field(default=None, sa_column=Column(SealedSecret()))
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
    __table_args__ = (
        Index("ix_webhook_messages_company_time", "company_id", "event_time"),
        # The delivery log's retention walks the oldest messages (store/log_retention.py).
        Index("ix_webhook_messages_created", "created_at"),
    )

    seq: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64, unique=True)
    company_id: str = Field(max_length=36)
    application_id: str | None = Field(default=None, max_length=36)
    type: str = Field(max_length=60)
    # The exact bytes that are signed and sent (UTF-8 JSON), so every attempt sends the same.
    body: str = Field(sa_column=Column(Text, nullable=False))
    event_time: datetime
    created_at: datetime = Field(default_factory=utcnow)
    # The trace context of the event's handling, so each attempt joins its trace (tracing.py).
    traceparent: str | None = Field(default=None, max_length=55)


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


# The tables themselves, for the hot statements of the claim and the recorder: they are
# built on the tables, not the ORM classes, whose execution path costs more.
DELIVERIES: Any = Delivery.__table__  # type: ignore[attr-defined]
ENDPOINTS: Any = WebhookEndpoint.__table__  # type: ignore[attr-defined]
ATTEMPTS: Any = Attempt.__table__  # type: ignore[attr-defined]
MESSAGES: Any = Message.__table__  # type: ignore[attr-defined]
