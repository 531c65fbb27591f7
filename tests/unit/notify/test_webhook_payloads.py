"""Internal events become webhook messages that carry only applicant-visible fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from services.notify.domain.payloads import (
    PUBLIC_EVENT_TYPES,
    WEBHOOK_TEST,
    InvalidEventTypes,
    MalformedEvent,
    encode_body,
    message_id,
    to_webhook_message,
    validate_event_types,
    webhook_test_message,
    webhook_type_for,
)

COMMON = {
    "application_id": "app-1",
    "reference": "REC-2026-000123",
    "company_id": "company-7",
}
# Everything an official or the CN side might put on an event that must never reach
# the applicant, whatever event it is attached to.
SECRETS = {
    "score": 8731,
    "fired_rules": [{"id": "heavy-ree", "points": 30}],
    "rules_version": "2026-01",
    "notes": [{"text": "exporter on watch list", "visibility": "joint"}],
    "cn_point_of_contact": {"name": "Li Wei", "email": "li.wei@mofcom.example"},
    "assigned_officials": [{"name": "EU Officer Two"}],
    "urgency": {"stock_days": 12, "jobs_at_risk": 800},
    "priority_list_position": 3,
    "detail": "internal memo: refused in principle",
}
LEAK_MARKERS = [
    "8731",
    "heavy-ree",
    '2026-01"',
    "watch list",
    "Li Wei",
    "mofcom",
    "EU Officer Two",
    "stock_days",
    "jobs_at_risk",
    "priority_list_position",
    "internal memo",
    "company-7",
]


def event(type_: str, **data: Any) -> dict[str, Any]:
    return {
        "id": f"evt-{type_}",
        "type": type_,
        "subject": "app-1",
        "time": "2026-03-02T10:15:00+01:00",
        "data": {**COMMON, **SECRETS, **data},
    }


SUBMITTED = event(
    "application.submitted",
    submitted_at="2026-03-02T09:15:00Z",
    status="submitted",
    application={"goods": [{"element": "Dy"}], "urgency": {"stock_days": 12}},
)
STATE_CHANGED = event(
    "case.state_changed",
    case_id="case-1",
    from_state="eu_screening",
    to_state="queued",
    priority_tier="P1",
    expected_decision_date="2026-04-20",
    point_of_contact={"name": "Anna Novak", "email": "anna.novak@ec.example", "id": "off-3"},
)
INFORMATION_REQUESTED = event(
    "case.information_requested",
    request={"id": "ir-1", "question": "End-user certificate?", "due": "2026-03-16", "by": "CN"},
)
REMINDER = event(
    "case.information_reminder",
    request={"id": "ir-1", "question": "End-user certificate?", "due": "2026-03-16", "by": "CN"},
)
APPROVED = event("case.decided", decision="approved", reason=None)
REFUSED = event("case.decided", decision="refused", reason="military_end_use")
LICENCE = event(
    "licence.issued",
    licence={
        "number": "LIC-2026-0042",
        "type": "three_month",
        "valid_from": "2026-04-01",
        "valid_until": "2026-06-30",
        "status": "active",
        "issued_by": "CN officer Zhang",
        "lines": [
            {
                "line": 1,
                "element": "Dy",
                "form": "metal",
                "approved_quantity_kg": 100.0,
                "requested_quantity_kg": 120.5,
                "value_eur": 51000,
            }
        ],
    },
)
REMINDER = event(
    "case.information_reminder",
    request={"id": "ir-1", "question": "End-user certificate?", "due": "2026-03-16", "by": "CN"},
)
ACKNOWLEDGED = event(
    "case.acknowledged",
    case_id="case-1",
    state="cn_review",
    accepted_on="2026-03-02",
    statutory_due_date="2026-05-05",
    expected_decision_date="2026-03-30",
)
REVOKED = event(
    "licence.revoked",
    case_id="case-1",
    number="LIC-2026-0042",
    revoked_on="2026-05-01",
    reason="diversion to a listed entity",
)
SHIPPED = event(
    "licence.shipment_recorded",
    case_id="case-1",
    number="LIC-2026-0042",
    shipment_id="shp-1",
    shipped_on="2026-05-02",
    status="active",
    recorded_by="CN officer Zhang",
    lines=[{"line": 1, "element": "Dy", "form": "metal", "quantity_kg": 60.0, "value_eur": 51000}],
    remaining=[{"line": 1, "element": "Dy", "form": "metal", "remaining_kg": 40.0, "score": 8731}],
)
ALL_SENT = [
    SUBMITTED,
    STATE_CHANGED,
    INFORMATION_REQUESTED,
    REMINDER,
    ACKNOWLEDGED,
    APPROVED,
    REFUSED,
    LICENCE,
    REVOKED,
    SHIPPED,
]


def body_of(internal: dict[str, Any]) -> dict[str, Any]:
    message = to_webhook_message(internal)
    assert message is not None
    return json.loads(message.encoded())


@pytest.mark.parametrize(
    ("internal", "webhook_type"),
    [
        (SUBMITTED, "application.received"),
        (STATE_CHANGED, "application.status_changed"),
        (INFORMATION_REQUESTED, "application.information_requested"),
        (REMINDER, "application.information_reminder"),
        (ACKNOWLEDGED, "application.status_changed"),
        (APPROVED, "application.approved"),
        (REFUSED, "application.refused"),
        (LICENCE, "licence.issued"),
        (REVOKED, "licence.revoked"),
        (SHIPPED, "licence.shipment_recorded"),
    ],
)
def test_internal_event_types_map_to_webhook_types(
    internal: dict[str, Any], webhook_type: str
) -> None:
    assert webhook_type_for(internal) == webhook_type
    assert body_of(internal)["type"] == webhook_type
    assert webhook_type in PUBLIC_EVENT_TYPES


@pytest.mark.parametrize("decision", ["not_admitted", "lapsed", "withdrawn"])
def test_other_decisions_send_nothing_since_the_state_change_already_did(decision: str) -> None:
    assert to_webhook_message(event("case.decided", decision=decision)) is None


@pytest.mark.parametrize(
    "internal_type",
    ["priority_list.issued", "case.deadline_breached", "case.note_added", "unknown.thing"],
)
def test_events_applicants_are_not_told_of_send_nothing(internal_type: str) -> None:
    assert to_webhook_message(event(internal_type)) is None


def test_body_has_type_timestamp_in_utc_and_data() -> None:
    body = body_of(SUBMITTED)
    assert set(body) == {"type", "timestamp", "data"}
    assert body["timestamp"] == "2026-03-02T09:15:00Z"


def test_received_carries_only_reference_status_and_submission_time() -> None:
    assert body_of(SUBMITTED)["data"] == {
        "application_id": "app-1",
        "reference": "REC-2026-000123",
        "status": "submitted",
        "submitted_at": "2026-03-02T09:15:00Z",
    }


def test_status_changed_carries_states_tier_expected_date_and_eu_point_of_contact() -> None:
    assert body_of(STATE_CHANGED)["data"] == {
        "application_id": "app-1",
        "reference": "REC-2026-000123",
        "previous_status": "eu_screening",
        "status": "queued",
        "priority_tier": "P1",
        "expected_decision_date": "2026-04-20",
        "point_of_contact": {"name": "Anna Novak", "email": "anna.novak@ec.example"},
    }


def test_a_cn_point_of_contact_is_never_sent() -> None:
    cn_contact = event(
        "case.state_changed",
        to_state="cn_review",
        point_of_contact={"name": "Zhang San", "side": "CN"},
    )
    data = body_of(cn_contact)["data"]
    assert data["point_of_contact"] is None
    assert "Zhang San" not in json.dumps(data)


def test_missing_optional_fields_are_sent_as_null() -> None:
    data = body_of(event("case.state_changed", to_state="eu_screening"))["data"]
    assert data["previous_status"] is None
    assert data["priority_tier"] is None
    assert data["point_of_contact"] is None


def test_information_requested_carries_the_request_id_question_and_due_date() -> None:
    assert body_of(INFORMATION_REQUESTED)["data"] == {
        "application_id": "app-1",
        "reference": "REC-2026-000123",
        "request": {"id": "ir-1", "question": "End-user certificate?", "due": "2026-03-16"},
    }


def test_a_reminder_repeats_the_open_request_as_it_was_asked() -> None:
    assert body_of(REMINDER)["data"] == body_of(INFORMATION_REQUESTED)["data"]


def test_an_acknowledgement_is_a_status_change_with_the_statutory_and_expected_dates() -> None:
    assert body_of(ACKNOWLEDGED)["data"] == {
        "application_id": "app-1",
        "reference": "REC-2026-000123",
        "previous_status": "cn_review",
        "status": "cn_review",
        "accepted_on": "2026-03-02",
        "statutory_due_date": "2026-05-05",
        "expected_decision_date": "2026-03-30",
    }


def test_a_revocation_carries_the_licence_number_and_day_but_not_chinas_reason() -> None:
    data = body_of(REVOKED)["data"]
    assert data == {
        "application_id": "app-1",
        "reference": "REC-2026-000123",
        "licence": {"number": "LIC-2026-0042", "status": "revoked", "revoked_on": "2026-05-01"},
    }
    assert "diversion" not in json.dumps(data)


def test_a_shipment_carries_its_lines_and_what_remains_but_not_who_recorded_it() -> None:
    data = body_of(SHIPPED)["data"]
    assert data == {
        "application_id": "app-1",
        "reference": "REC-2026-000123",
        "licence": {
            "number": "LIC-2026-0042",
            "status": "active",
            "remaining": [{"line": 1, "element": "Dy", "form": "metal", "remaining_kg": 40.0}],
        },
        "shipment": {
            "id": "shp-1",
            "shipped_on": "2026-05-02",
            "lines": [{"line": 1, "element": "Dy", "form": "metal", "quantity_kg": 60.0}],
        },
    }
    assert "Zhang" not in json.dumps(data) and "51000" not in json.dumps(data)


def test_decisions_carry_decision_and_reason_but_not_the_officials_detail() -> None:
    assert body_of(REFUSED)["data"] == {
        "application_id": "app-1",
        "reference": "REC-2026-000123",
        "decision": "refused",
        "reason": "military_end_use",
        "reason_label": None,
    }
    assert body_of(APPROVED)["data"]["decision"] == "approved"


def test_a_decision_carries_the_names_of_its_reason_as_review_sent_them() -> None:
    names = {"en": "Military end use or end user", "zh-Hans": "军事最终用途或军事最终用户"}
    named = event("case.decided", decision="refused", reason="military_end_use", reason_label=names)
    assert body_of(named)["data"]["reason_label"] == names


def test_a_licence_carries_the_names_of_its_type_as_review_sent_them() -> None:
    names = {"en": "Three-month licence", "zh-Hans": "三个月有效期出口许可证"}
    named = event("licence.issued", licence={**LICENCE["data"]["licence"], "type_label": names})
    assert body_of(named)["data"]["licence"]["type_label"] == names


def test_licence_issued_carries_the_licence_and_approved_quantities_only() -> None:
    assert body_of(LICENCE)["data"] == {
        "application_id": "app-1",
        "reference": "REC-2026-000123",
        "licence": {
            "number": "LIC-2026-0042",
            "type": "three_month",
            "valid_from": "2026-04-01",
            "valid_until": "2026-06-30",
            "status": "active",
            "type_label": None,
            "lines": [{"line": 1, "element": "Dy", "form": "metal", "approved_quantity_kg": 100.0}],
        },
    }


@pytest.mark.parametrize("internal", ALL_SENT, ids=lambda e: e["type"])
def test_no_hidden_field_reaches_any_webhook(internal: dict[str, Any]) -> None:
    sent = to_webhook_message(internal)
    assert sent is not None
    text = sent.encoded().decode()
    for marker in LEAK_MARKERS:
        assert marker not in text


def test_a_nested_object_where_a_plain_value_belongs_is_refused_not_forwarded() -> None:
    smuggled = event("case.state_changed", to_state={"state": "queued", "score": 8731})
    with pytest.raises(MalformedEvent, match="to_state"):
        to_webhook_message(smuggled)


@pytest.mark.parametrize(
    ("internal", "says"),
    [
        ({**SUBMITTED, "data": {**SUBMITTED["data"], "reference": None}}, "reference"),
        ({**SUBMITTED, "data": {**SUBMITTED["data"], "company_id": ""}}, "company_id"),
        ({**SUBMITTED, "time": "yesterday"}, "ISO 8601"),
        ({**SUBMITTED, "time": "2026-03-02T10:15:00"}, "time zone"),
        ({**SUBMITTED, "id": None}, "id"),
        ({**SUBMITTED, "data": None}, "data"),
        (event("case.information_requested"), "request"),
        (event("case.information_reminder"), "request"),
        (event("case.acknowledged", state="cn_review"), "accepted_on"),
        (event("licence.revoked", revoked_on="2026-05-01"), "number"),
        (event("licence.issued", licence={"number": "L-1", "lines": "all"}), "lines"),
        (
            event("case.decided", decision="refused", reason="other", reason_label={"en": 8731}),
            "reason_label",
        ),
        (event("licence.issued", licence={"number": "L-1", "type_label": "Annual"}), "type_label"),
    ],
)
def test_events_missing_what_their_webhook_needs_are_malformed(
    internal: dict[str, Any], says: str
) -> None:
    with pytest.raises(MalformedEvent, match=says):
        to_webhook_message(internal)


def test_message_records_the_company_to_notify() -> None:
    sent = to_webhook_message(SUBMITTED)
    assert sent is not None
    assert sent.company_id == "company-7"
    assert sent.event_id == "evt-application.submitted"


def test_message_id_is_stable_per_event_and_endpoint() -> None:
    first = message_id("evt-1", "ep-1")
    assert first == message_id("evt-1", "ep-1")
    assert first.startswith("msg_")
    assert first != message_id("evt-1", "ep-2")
    assert first != message_id("evt-2", "ep-1")
    # The pair is hashed unambiguously: moving characters across the boundary changes it.
    assert message_id("a:b", "c") != message_id("a", "b:c")


def test_the_same_event_always_encodes_to_the_same_bytes() -> None:
    assert to_webhook_message(STATE_CHANGED) == to_webhook_message(STATE_CHANGED)
    first, second = to_webhook_message(STATE_CHANGED), to_webhook_message(STATE_CHANGED)
    assert first is not None and second is not None
    assert first.encoded() == second.encoded()
    assert first.message_id("ep-1") == message_id(STATE_CHANGED["id"], "ep-1")


def test_encoded_body_is_compact_utf8_json() -> None:
    assert encode_body({"b": "包头", "a": 1}) == '{"a":1,"b":"包头"}'.encode()
    with pytest.raises(ValueError):
        encode_body({"x": float("nan")})


def test_test_message_is_a_webhook_test_for_one_endpoint() -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    sent = webhook_test_message("test-uuid", "company-7", "ep-1", now)
    body = json.loads(sent.encoded())
    assert body["type"] == WEBHOOK_TEST == "webhook.test"
    assert body["timestamp"] == "2026-03-02T09:00:00Z"
    assert body["data"]["endpoint_id"] == "ep-1"
    assert sent.message_id("ep-1") != webhook_test_message(
        "another-uuid", "company-7", "ep-1", now
    ).message_id("ep-1")


def test_endpoints_subscribe_to_the_nine_public_types_only() -> None:
    assert {
        "application.received",
        "application.status_changed",
        "application.information_requested",
        "application.information_reminder",
        "application.approved",
        "application.refused",
        "licence.issued",
        "licence.revoked",
        "licence.shipment_recorded",
    } == PUBLIC_EVENT_TYPES
    assert validate_event_types(["licence.issued", "licence.issued"]) == {"licence.issued"}


def test_unknown_or_test_event_types_cannot_be_subscribed() -> None:
    with pytest.raises(InvalidEventTypes) as refused:
        validate_event_types(["licence.issued", "case.decided", WEBHOOK_TEST])
    assert refused.value.unknown == ["case.decided", "webhook.test"]
    assert "application.received" in str(refused.value)


def test_an_empty_subscription_is_refused() -> None:
    with pytest.raises(InvalidEventTypes, match="at least one"):
        validate_event_types([])
