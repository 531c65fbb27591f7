"""Notify's service layer: what applicants do with their webhook endpoints, beyond HTTP.

Registering endpoints, rotating their secrets, test sends, redelivery and recovery; what
each of the company's people is e-mailed about. The
functions take the engine and plain values and raise the errors below; the routes in
`services.notify.api` parse, call them and render, and `install_errors` there turns the errors
into problem details in one place.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.notify import store
from services.notify.domain import payloads, signing, ssrf
from services.notify.settings import NotifySettings
from services.notify.store import recipients
from shared.accounts.errors import InvalidInput
from shared.accounts.people import People
from shared.accounts.sessions import Sessions
from shared.db import session_scope, utcnow

# --- errors ----------------------------------------------------------------------------------


class NotifyError(Exception):
    """Base of every refusal of notify's service layer: one problem type a class, the message
    its detail."""


class NotFound(NotifyError):
    """No such endpoint or delivery, or another company's (which is as if absent)."""


class EndpointRefused(NotifyError):
    """The endpoint's URL or event types cannot be registered; one message a field."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("The endpoint cannot be registered; see `errors`.")
        self.errors = errors


class StateConflict(NotifyError):
    """The endpoint or delivery is not in a state that allows this."""

    def __init__(self, detail: str, kind: str) -> None:
        super().__init__(detail)
        self.kind = kind


# --- endpoints -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rotated:
    endpoint_id: str
    secret: str
    previous_secret_expires_at: datetime | None


@dataclass(frozen=True)
class Scheduled:
    """A delivery just (re)scheduled, with what its view needs."""

    delivery: store.Delivery
    message: store.Message
    attempts: list[store.Attempt]


def _own_endpoint(session: Session, company_id: str, endpoint_id: str) -> store.WebhookEndpoint:
    endpoint = store.own_endpoint(session, company_id, endpoint_id)
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def _require_active(endpoint: store.WebhookEndpoint) -> None:
    if endpoint.status != store.ACTIVE:
        raise StateConflict(
            "The endpoint is disabled; enable it first "
            f"(POST /v1/webhook-endpoints/{endpoint.id}/enable).",
            kind="endpoint-disabled",
        )


def _checked_types(
    url: str, event_types: list[str], policy: ssrf.WebhookURLPolicy
) -> frozenset[str]:
    """The subscribed types if the URL and types are acceptable; else the refusal of each."""
    errors: list[tuple[str, str]] = []
    types: frozenset[str] = frozenset()
    try:
        types = payloads.validate_event_types(event_types)
    except payloads.InvalidEventTypes as exc:
        errors.append(("event_types", str(exc)))
    try:
        ssrf.check_url(url, policy)
    except ssrf.UnsafeWebhookURL as exc:
        errors.append(("url", exc.reason))
    if errors:
        raise EndpointRefused(errors)
    return types


def register_endpoint(
    engine: Engine,
    settings: NotifySettings,
    company_id: str,
    url: str,
    event_types: list[str],
    description: str | None,
) -> store.WebhookEndpoint:
    """A new endpoint with a fresh signing secret, within the company's endpoint limit."""
    types = _checked_types(url, event_types, settings.url_policy())
    now = utcnow()
    with session_scope(engine) as session:
        if store.count_endpoints(session, company_id) >= settings.max_endpoints_per_company:
            raise StateConflict(
                f"A company may have at most {settings.max_endpoints_per_company} endpoints; "
                "delete one first.",
                kind="too-many-endpoints",
            )
        endpoint = store.WebhookEndpoint(
            company_id=company_id,
            url=url,
            description=description,
            event_types=sorted(types),
            secret=signing.generate_secret(),
            created_at=now,
            updated_at=now,
        )
        session.add(endpoint)
        session.flush()
        return endpoint


def endpoints(
    engine: Engine, company_id: str, after: tuple[datetime, str] | None, limit: int
) -> list[store.WebhookEndpoint]:
    with Session(engine) as session:
        return store.list_endpoints(session, company_id, after, limit)


def endpoint(engine: Engine, company_id: str, endpoint_id: str) -> store.WebhookEndpoint:
    with Session(engine) as session:
        return _own_endpoint(session, company_id, endpoint_id)


def delete_endpoint(engine: Engine, company_id: str, endpoint_id: str) -> None:
    """Delete the endpoint; what is still waiting to go to it is cancelled."""
    now = utcnow()
    with session_scope(engine) as session:
        found = _own_endpoint(session, company_id, endpoint_id)
        found.deleted_at = found.updated_at = now
        session.add(found)
        store.cancel_pending(session, found.id, now)


def rotate_secret(
    engine: Engine, settings: NotifySettings, company_id: str, endpoint_id: str
) -> Rotated:
    """A new signing secret; the old one keeps signing during the grace period."""
    grace = settings.secret_rotation_grace
    now = utcnow()
    with session_scope(engine) as session:
        found = _own_endpoint(session, company_id, endpoint_id)
        if grace.total_seconds() > 0:
            found.previous_secret = found.secret
            found.previous_secret_expires_at = now + grace
        else:
            found.previous_secret = found.previous_secret_expires_at = None
        found.secret = signing.generate_secret()
        found.updated_at = now
        session.add(found)
        return Rotated(found.id, found.secret, found.previous_secret_expires_at)


def enable_endpoint(engine: Engine, company_id: str, endpoint_id: str) -> store.WebhookEndpoint:
    with session_scope(engine) as session:
        found = _own_endpoint(session, company_id, endpoint_id)
        found.status = store.ACTIVE
        found.disabled_reason = found.disabled_at = found.failing_since = None
        found.updated_at = utcnow()
        session.add(found)
        session.flush()
        return found


def send_test(engine: Engine, company_id: str, endpoint_id: str) -> Scheduled:
    """Schedule a `webhook.test` message to the endpoint."""
    now = utcnow()
    with session_scope(engine) as session:
        found = _own_endpoint(session, company_id, endpoint_id)
        _require_active(found)
        test = payloads.webhook_test_message(str(uuid.uuid4()), found.company_id, found.id, now)
        message = store.add_message(session, test, now)
        delivery = store.schedule(session, message, found, now)
        session.flush()
        return Scheduled(delivery, message, [])


# --- deliveries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryLog:
    """A page of an endpoint's deliveries with their messages and attempts."""

    rows: list[tuple[store.Delivery, store.Message]]
    attempts: dict[str, list[store.Attempt]]


def deliveries(
    engine: Engine,
    company_id: str,
    endpoint_id: str,
    status: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> DeliveryLog:
    with Session(engine) as session:
        found = _own_endpoint(session, company_id, endpoint_id)
        return _log(session, found.id, status, after, limit)


def _log(
    session: Session,
    endpoint_id: str,
    status: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> DeliveryLog:
    rows = store.list_deliveries(session, endpoint_id, status, after, limit)
    return DeliveryLog(rows, store.attempts_of(session, [d.id for d, _m in rows]))


def _scheduled(session: Session, delivery: store.Delivery) -> Scheduled:
    message = session.get(store.Message, delivery.message_seq)
    assert message is not None
    attempts = store.attempts_of(session, [delivery.id])[delivery.id]
    return Scheduled(delivery, message, attempts)


def delivery(engine: Engine, company_id: str, delivery_id: str) -> Scheduled:
    with Session(engine) as session:
        found = store.own_delivery(session, company_id, delivery_id)
        if found is None:
            raise NotFound("No such delivery.")
        return _scheduled(session, found)


def redeliver(engine: Engine, company_id: str, delivery_id: str) -> Scheduled:
    """Send one message again now, with the same webhook-id."""
    now = utcnow()
    with session_scope(engine) as session:
        found = store.own_delivery(session, company_id, delivery_id)
        if found is None:
            raise NotFound("No such delivery.")
        endpoint = session.get(store.WebhookEndpoint, found.endpoint_id)
        assert endpoint is not None
        _require_active(endpoint)
        lease = found.lease_until
        if found.status == store.PENDING and lease is not None and lease > now:
            raise StateConflict(
                "An attempt of this delivery is in progress; look at the log in a moment.",
                kind="attempt-in-progress",
            )
        if found.status == store.PENDING:
            found.next_attempt_at = found.updated_at = now
        else:
            store.reschedule(found, now)
        session.add(found)
        session.flush()
        scheduled = _scheduled(session, found)
        return scheduled


def recover(
    engine: Engine, company_id: str, endpoint_id: str, since: datetime, failed_only: bool
) -> int:
    """Schedule again every message of a subscribed type since a time; how many were."""
    now = utcnow()
    scheduled = 0
    with session_scope(engine) as session:
        found = _own_endpoint(session, company_id, endpoint_id)
        _require_active(found)
        messages = store.messages_since(session, found.company_id, since, found.event_types)
        existing = store.deliveries_since(session, found.id, since)
        for message in messages:
            assert message.seq is not None
            earlier = existing.get(message.seq)
            if earlier is None:
                store.schedule(session, message, found, now)
            elif earlier.status == store.PENDING or (
                failed_only and earlier.status == store.SUCCEEDED
            ):
                continue
            else:
                store.reschedule(earlier, now)
                session.add(earlier)
            scheduled += 1
    return scheduled


# --- people's e-mail -------------------------------------------------------------------------


@dataclass(frozen=True)
class EmailChoice:
    """What a company's staff member is e-mailed about."""

    person_id: str
    email: str
    event_types: list[str]
    language: str


def _staff_member(directory: Engine, company_id: str, person_id: str) -> recipients.Recipient:
    person = recipients.staff_member(directory, company_id, person_id)
    if person is None:
        raise NotFound("No such person in your company.")
    return person


def email_choice(engine: Engine, directory: Engine, company_id: str, person_id: str) -> EmailChoice:
    """The person's choice, or the defaults while they have made none."""
    person = _staff_member(directory, company_id, person_id)
    with Session(engine) as session:
        row = recipients.email_endpoint(session, person.person_id)
    chosen = sorted(row.event_types) if row is not None else sorted(payloads.DEFAULT_EMAIL_TYPES)
    return EmailChoice(person.person_id, person.email, chosen, person.language)


def choose_email(
    engine: Engine,
    directory: Engine,
    company_id: str,
    person_id: str,
    event_types: list[str] | None,
    language: str | None = None,
) -> EmailChoice:
    """Set what the person is e-mailed about (none at all: an empty list) and in which
    language; either left out stays as it is. Both are checked before either is stored."""
    person = _staff_member(directory, company_id, person_id)
    refused: list[tuple[str, str]] = []
    types: frozenset[str] | None = None
    if event_types is not None:
        try:
            types = payloads.validate_event_types(event_types, allow_none=True)
        except payloads.InvalidEventTypes as exc:
            refused.append(("event_types", str(exc)))
    people = People(directory, Sessions(directory))
    if language is not None:
        try:
            language = people.checked_language(language)
        except InvalidInput as exc:
            refused.append(("language", str(exc)))
    if refused:
        raise EndpointRefused(refused)
    if language is not None and language != person.language:
        people.set_language(person.person_id, language, by=f"company:{company_id}")
    if types is not None:
        with session_scope(engine) as session:
            recipients.choose(session, person, sorted(types), utcnow())
    return email_choice(engine, directory, company_id, person_id)


def email_deliveries(
    engine: Engine,
    directory: Engine,
    company_id: str,
    person_id: str,
    status: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> DeliveryLog:
    """The person's e-mail deliveries with their attempts (the SMTP replies), newest first."""
    person = _staff_member(directory, company_id, person_id)
    with Session(engine) as session:
        row = recipients.email_endpoint(session, person.person_id)
        return DeliveryLog([], {}) if row is None else _log(session, row.id, status, after, limit)
