"""Webhook messages built from internal events, carrying only fields the applicant may see.

Each webhook type has one builder that names every field it sends (an allow-list):
a field added to an internal event reaches applicants only when a builder here is
changed to send it. Scores, fired rules, notes, commercial data of other parties,
officials other than the EU point of contact and anything from the CN side never do
(PROTOCOL.md, visibility).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

APPLICATION_RECEIVED = "application.received"
APPLICATION_STATUS_CHANGED = "application.status_changed"
APPLICATION_INFORMATION_REQUESTED = "application.information_requested"
# The answer to a request for information is due soon (review's reminder day).
APPLICATION_INFORMATION_REMINDER = "application.information_reminder"
APPLICATION_APPROVED = "application.approved"
APPLICATION_REFUSED = "application.refused"
LICENCE_ISSUED = "licence.issued"
LICENCE_REVOKED = "licence.revoked"
# China recorded a shipment against the licence: its lines and what remains (not e-mailed
# unless chosen: a licence may see many shipments).
LICENCE_SHIPMENT_RECORDED = "licence.shipment_recorded"
# Sent only on an owner's "send a test event" request, to that one endpoint; it is not
# something to subscribe to, so it is not in PUBLIC_EVENT_TYPES.
WEBHOOK_TEST = "webhook.test"

# What an endpoint may subscribe to (`event_types` at registration).
PUBLIC_EVENT_TYPES: frozenset[str] = frozenset(
    {
        APPLICATION_RECEIVED,
        APPLICATION_STATUS_CHANGED,
        APPLICATION_INFORMATION_REQUESTED,
        APPLICATION_INFORMATION_REMINDER,
        APPLICATION_APPROVED,
        APPLICATION_REFUSED,
        LICENCE_ISSUED,
        LICENCE_REVOKED,
        LICENCE_SHIPMENT_RECORDED,
    }
)

# What a company's staff member is e-mailed about until they choose (docs/notify.md): what
# asks something of them or decides their case; not every receipt and status change.
DEFAULT_EMAIL_TYPES: frozenset[str] = frozenset(
    {
        APPLICATION_INFORMATION_REQUESTED,
        APPLICATION_INFORMATION_REMINDER,
        APPLICATION_APPROVED,
        APPLICATION_REFUSED,
        LICENCE_ISSUED,
        LICENCE_REVOKED,
    }
)

Event = Mapping[str, Any]
Data = dict[str, Any]
Scalar = str | int | float | bool | None


class MalformedEvent(ValueError):
    """An internal event that lacks a field its webhook needs, or has one of the wrong shape."""


class InvalidEventTypes(ValueError):
    """An endpoint's `event_types` that are empty or name types that do not exist."""

    def __init__(self, unknown: Iterable[str] = ()) -> None:
        self.unknown = sorted(unknown)
        known = ", ".join(sorted(PUBLIC_EVENT_TYPES))
        if self.unknown:
            message = f"unknown event types: {', '.join(self.unknown)} (known: {known})"
        else:
            message = f"subscribe to at least one event type (known: {known})"
        super().__init__(message)


@dataclass(frozen=True)
class WebhookMessage:
    """One message for one company's endpoints; the same body goes to each of them."""

    event_id: str
    company_id: str
    type: str
    body: Mapping[str, Any]
    # The trace context of the event's handling (shared/tracing.py); never in the body.
    traceparent: str | None = None

    def message_id(self, endpoint_id: str) -> str:
        """The `webhook-id` for this message at one endpoint (see `message_id`)."""
        return message_id(self.event_id, endpoint_id)

    def encoded(self) -> bytes:
        """The exact bytes to sign and send."""
        return encode_body(self.body)


def message_id(event_id: str, endpoint_id: str) -> str:
    """A `webhook-id` stable per (event, endpoint): retries, redeliveries and recovery reuse it.

    Receivers de-duplicate on it, so it must not change between attempts, and two
    endpoints must not share one (they may be the same receiver behind two URLs).
    """
    # JSON keeps the pair unambiguous whatever characters the ids contain.
    digest = hashlib.sha256(json.dumps([event_id, endpoint_id]).encode()).hexdigest()
    return f"msg_{digest[:32]}"


def encode_body(body: Mapping[str, Any]) -> bytes:
    """Compact, key-sorted UTF-8 JSON (no NaN), so one message always has the same bytes."""
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def validate_event_types(event_types: Iterable[str], allow_none: bool = False) -> frozenset[str]:
    """The event types an endpoint subscribes to; raises on unknown names or an empty list
    (which a person's e-mail choice may be: `allow_none`)."""
    wanted = frozenset(event_types)
    if (not wanted and not allow_none) or wanted - PUBLIC_EVENT_TYPES:
        raise InvalidEventTypes(wanted - PUBLIC_EVENT_TYPES)
    return wanted


def _scalar(value: Any, name: str) -> Scalar:
    # Only plain values pass: a nested object in a field meant to be a scalar could
    # carry fields nobody allowed.
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise MalformedEvent(f"field {name!r} should be a plain value, got {type(value).__name__}")


def _required(data: Mapping[str, Any], key: str, where: str = "data") -> Scalar:
    value = _scalar(data.get(key), f"{where}.{key}")
    if value is None or value == "":
        raise MalformedEvent(f"{where}.{key} is missing")
    return value


def _optional(data: Mapping[str, Any], key: str, where: str = "data") -> Scalar:
    return _scalar(data.get(key), f"{where}.{key}")


def _mapping(data: Mapping[str, Any], key: str, where: str = "data") -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise MalformedEvent(f"{where}.{key} should be an object")
    return value


def _names(data: Mapping[str, Any], key: str, where: str = "data") -> dict[str, str] | None:
    # A code's names by language (shared/events.py `Names`): only text, by tag, passes.
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(tag, str) and isinstance(name, str) for tag, name in value.items()
    ):
        raise MalformedEvent(f"{where}.{key} should map language tags to names")
    return dict(value)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise MalformedEvent("event times must carry a time zone")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _event_time(event: Event) -> str:
    raw = event.get("time")
    if isinstance(raw, str):
        try:
            raw = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise MalformedEvent(f"event time {raw!r} is not an ISO 8601 date-time") from exc
    if not isinstance(raw, datetime):
        raise MalformedEvent("event has no time")
    return _iso(raw)


def _application(data: Mapping[str, Any]) -> Data:
    return {
        "application_id": _required(data, "application_id"),
        "reference": _required(data, "reference"),
    }


def _eu_point_of_contact(value: Any) -> Data | None:
    # Only the EU side's contact is shown to applicants; an event that carried a CN
    # official here by mistake must not leak the name.
    if not isinstance(value, Mapping) or value.get("side", "EU") != "EU":
        return None
    name = _optional(value, "name", "data.point_of_contact")
    if name is None:
        return None
    return {"name": name, "email": _optional(value, "email", "data.point_of_contact")}


def _received(data: Mapping[str, Any]) -> Data:
    return {
        **_application(data),
        "status": _required(data, "status"),
        "submitted_at": _optional(data, "submitted_at"),
    }


def _status_changed(data: Mapping[str, Any]) -> Data:
    return {
        **_application(data),
        "previous_status": _optional(data, "from_state"),
        "status": _required(data, "to_state"),
        "priority_tier": _optional(data, "priority_tier"),
        "expected_decision_date": _optional(data, "expected_decision_date"),
        "point_of_contact": _eu_point_of_contact(data.get("point_of_contact")),
    }


def _acknowledged(data: Mapping[str, Any]) -> Data:
    # MOFCOM accepted the file: the status stays, the statutory clock starts, the dates move.
    status = _required(data, "state")
    return {
        **_application(data),
        "previous_status": status,
        "status": status,
        "accepted_on": _required(data, "accepted_on"),
        "statutory_due_date": _optional(data, "statutory_due_date"),
        "expected_decision_date": _optional(data, "expected_decision_date"),
    }


def _information_requested(data: Mapping[str, Any]) -> Data:
    request = _mapping(data, "request")
    return {
        **_application(data),
        "request": {
            "id": _required(request, "id", "data.request"),
            "question": _required(request, "question", "data.request"),
            "due": _optional(request, "due", "data.request"),
        },
    }


def _decided(data: Mapping[str, Any]) -> Data:
    # `detail` stays out: it is the officials' free text, written for the case file.
    return {
        **_application(data),
        "decision": _required(data, "decision"),
        "reason": _optional(data, "reason"),
        "reason_label": _names(data, "reason_label"),
    }


def _licence_line(line: Any) -> Data:
    if not isinstance(line, Mapping):
        raise MalformedEvent("data.licence.lines should hold objects")
    where = "data.licence.lines[]"
    return {
        "line": _optional(line, "line", where),
        "element": _optional(line, "element", where),
        "form": _optional(line, "form", where),
        "approved_quantity_kg": _optional(line, "approved_quantity_kg", where),
    }


def _licence_issued(data: Mapping[str, Any]) -> Data:
    licence = _mapping(data, "licence")
    lines = licence.get("lines") or []
    if not isinstance(lines, list):
        raise MalformedEvent("data.licence.lines should be a list")
    where = "data.licence"
    return {
        **_application(data),
        "licence": {
            "number": _required(licence, "number", where),
            "type": _optional(licence, "type", where),
            "type_label": _names(licence, "type_label", where),
            "valid_from": _optional(licence, "valid_from", where),
            "valid_until": _optional(licence, "valid_until", where),
            "status": _optional(licence, "status", where),
            "lines": [_licence_line(line) for line in lines],
        },
    }


def _licence_revoked(data: Mapping[str, Any]) -> Data:
    # China's reason for the revocation is its own wording for the case file: never sent.
    return {
        **_application(data),
        "licence": {
            "number": _required(data, "number"),
            "status": "revoked",
            "revoked_on": _required(data, "revoked_on"),
        },
    }


def _keyed(item: Any, where: str, quantity: str) -> Data:
    if not isinstance(item, Mapping):
        raise MalformedEvent(f"{where} should hold objects")
    return {
        "line": _optional(item, "line", where),
        "element": _required(item, "element", where),
        "form": _optional(item, "form", where),
        quantity: _required(item, quantity, where),
    }


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise MalformedEvent(f"data.{key} should be a list")
    return value


def _shipment_recorded(data: Mapping[str, Any]) -> Data:
    # Who in China recorded it, and when, stay in the case file: never sent.
    return {
        **_application(data),
        "licence": {
            "number": _required(data, "number"),
            "status": _optional(data, "status"),
            "remaining": [
                _keyed(item, "data.remaining[]", "remaining_kg")
                for item in _list(data, "remaining")
            ],
        },
        "shipment": {
            "id": _required(data, "shipment_id"),
            "shipped_on": _required(data, "shipped_on"),
            "lines": [_keyed(item, "data.lines[]", "quantity_kg") for item in _list(data, "lines")],
        },
    }


Builder = Callable[[Mapping[str, Any]], Data]
# Each internal event applicants are told of: the webhook type it becomes and its builder.
_WEBHOOKS: dict[str, tuple[str, Builder]] = {
    "application.submitted": (APPLICATION_RECEIVED, _received),
    "case.state_changed": (APPLICATION_STATUS_CHANGED, _status_changed),
    "case.acknowledged": (APPLICATION_STATUS_CHANGED, _acknowledged),
    "case.information_requested": (APPLICATION_INFORMATION_REQUESTED, _information_requested),
    # The reminder repeats the open request, as the request itself was sent.
    "case.information_reminder": (APPLICATION_INFORMATION_REMINDER, _information_requested),
    "licence.issued": (LICENCE_ISSUED, _licence_issued),
    "licence.revoked": (LICENCE_REVOKED, _licence_revoked),
    "licence.shipment_recorded": (LICENCE_SHIPMENT_RECORDED, _shipment_recorded),
}
_DECISION_TYPES = {"approved": APPLICATION_APPROVED, "refused": APPLICATION_REFUSED}


def webhook_type_for(event: Event) -> str | None:
    """The webhook type an internal event becomes, or None if applicants are not told of it."""
    webhook = _webhook_for(event)
    return webhook[0] if webhook is not None else None


def _webhook_for(event: Event) -> tuple[str, Builder] | None:
    internal = event.get("type")
    if internal == "case.decided":
        # Other decisions (not_admitted, lapsed...) reach the applicant through the
        # case.state_changed that accompanies them; a second webhook would repeat it.
        data = event.get("data")
        decision = data.get("decision") if isinstance(data, Mapping) else None
        webhook_type = _DECISION_TYPES.get(decision) if isinstance(decision, str) else None
        return (webhook_type, _decided) if webhook_type is not None else None
    return _WEBHOOKS.get(internal) if isinstance(internal, str) else None


def to_webhook_message(event: Event) -> WebhookMessage | None:
    """The webhook message for an internal CloudEvent, or None if it sends none.

    Raises MalformedEvent when the event lacks what its webhook needs.
    """
    webhook = _webhook_for(event)
    if webhook is None:
        return None
    webhook_type, build = webhook
    data = event.get("data")
    if not isinstance(data, Mapping):
        raise MalformedEvent("event has no data object")
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedEvent("event has no id")
    return WebhookMessage(
        event_id=event_id,
        company_id=str(_required(data, "company_id")),
        type=webhook_type,
        body={
            "type": webhook_type,
            "timestamp": _event_time(event),
            "data": build(data),
        },
    )


def webhook_test_message(
    test_id: str, company_id: str, endpoint_id: str, now: datetime
) -> WebhookMessage:
    """A `webhook.test` message for one endpoint; `test_id` is fresh per request (e.g. a UUID)."""
    return WebhookMessage(
        event_id=test_id,
        company_id=company_id,
        type=WEBHOOK_TEST,
        body={
            "type": WEBHOOK_TEST,
            "timestamp": _iso(now),
            "data": {
                "endpoint_id": endpoint_id,
                "message": "Test event from REE Channel: this endpoint receives webhooks.",
            },
        },
    )
