"""Each side's view of a case, per PROTOCOL.md's visibility table."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.review.domain.visibility import NOTE_ACTION, view_for
from tests.support import sample_application

# Keys China must never receive, anywhere (commercial urgency, score, fired rules).
CN_HIDDEN_KEYS = {
    "urgency", "stock_days", "production_stop_date", "jobs_at_risk", "value_eur",
    "contract_value_eur", "score", "fired", "rules_version", "explanation", "sme",
}  # fmt: skip


def full_case() -> dict[str, Any]:
    return {
        "id": "case-1",
        "reference": "REC-2026-000123",
        "version": 7,
        "state": "cn_review",
        "applicant": {"company_id": "co-1", "name": "Bosch GmbH", "eori": "DE123456789012345"},
        "application": sample_application(
            date(2026, 11, 20),
            licence_type="annual",
            end_use={"category": "automotive", "description": "traction motors"},
            goods=[
                {
                    "element": "Dy",
                    "form": "metal",
                    "hs_code": "280530",
                    "quantity_kg": 120.5,
                    "value_eur": 51000,
                },
            ],
            contract_value_eur=2_000_000,
        ),
        "priority": {
            "tier": "P1",
            "score": 85,
            "fired": [
                {
                    "rule_id": "stock_critical",
                    "description": "d",
                    "points": 25,
                    "explanation": "12 days of stock left (≤ 14)",
                }
            ],
            "rules_version": "2026.1",
            "flags": [],
            "list_number": 9,
            "list_position": 2,
        },
        "expected_decision_date": "2026-12-01",
        "points_of_contact": {
            "EU": {"id": "eu-7", "name": "Anna Weber", "email": "anna@ec.europa.eu"},
            "CN": {"id": "cn-3", "name": "Li Wei", "email": "li@mofcom.gov.cn"},
        },
        "information_requests": [
            {
                "id": "r1",
                "question": "How many days of stock?",
                "asked_by_side": "EU",
                "status": "answered",
                "answer": "12 days",
            },
            {
                "id": "r2",
                "question": "Who is the end user?",
                "asked_by_side": "CN",
                "status": "open",
                "due": "2026-12-01",
            },
        ],
        "documents": [
            {"id": "d1", "kind": "contract", "filename": "contract.pdf", "shareable": False},
            {"id": "d2", "kind": "end_user_statement", "filename": "eus.pdf", "shareable": True},
        ],
        "notes": [
            {
                "id": "n1",
                "visibility": "eu",
                "text": "they have 12 days left",
                "author": {"id": "eu-7", "name": "Anna Weber", "side": "EU"},
            },
            {
                "id": "n2",
                "visibility": "cn",
                "text": "exporter under audit",
                "author": {"id": "cn-3", "name": "Li Wei", "side": "CN"},
            },
            {
                "id": "n3",
                "visibility": "joint",
                "text": "discuss on Tuesday",
                "author": {"id": "cn-3", "name": "Li Wei", "side": "CN"},
            },
        ],
        "history": [
            entry(1, "system", "open", {"priority": {"tier": "P1", "score": 85, "fired": []}}),
            entry(2, "EU", "set_priority", {"tier": "P1", "reason": "12 days of stock"}),
            entry(3, "EU", NOTE_ACTION, {"note_id": "n1", "visibility": "eu", "text": "12 days"}),
            entry(4, "CN", NOTE_ACTION, {"note_id": "n2", "visibility": "cn", "text": "audit"}),
            entry(5, "EU", "fast_track", {"reason": "production stops 15 Dec"}),
            entry(6, "CN", "acknowledge", {"accepted_on": "2026-11-02"}),
            entry(7, "CN", "request_information", {"request_id": "r2", "question": "Who?"}),
        ],
    }


def entry(seq: int, side: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"e{seq}",
        "seq": seq,
        "actor": {"id": f"{side}-1", "side": side, "role": "officer"},
        "action": action,
        "at": f"2026-11-0{seq}T09:00:00Z",
        "from_state": "cn_review",
        "to_state": "cn_review",
        "payload": payload,
        "prev_hash": "0" * 64,
        "hash": "f" * 64,
    }


def keys_anywhere(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from keys_anywhere(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from keys_anywhere(inner)


def strings_anywhere(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for inner in value.values():
            yield from strings_anywhere(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from strings_anywhere(inner)
    elif isinstance(value, str):
        yield value


# --- China -----------------------------------------------------------------------------


def test_cn_never_sees_commercial_urgency_score_or_fired_rules() -> None:
    view = view_for("CN", full_case())
    assert not CN_HIDDEN_KEYS & set(keys_anywhere(view))
    assert view["priority"] == {"tier": "P1", "list_number": 9, "list_position": 2}
    assert view["application"]["goods"] == [
        {"element": "Dy", "form": "metal", "hs_code": "280530", "quantity_kg": 120.5}
    ]


def test_cn_sees_the_application_core_only() -> None:
    application = view_for("CN", full_case())["application"]
    assert set(application) == {
        "mofcom_application_number", "licence_type", "exporter", "end_use", "goods",
    }  # fmt: skip
    assert application["end_use"] == {"category": "automotive"}


def test_cn_sees_only_shareable_documents_and_joint_or_cn_notes() -> None:
    view = view_for("CN", full_case())
    assert [d["id"] for d in view["documents"]] == ["d2"]
    assert "shareable" not in view["documents"][0]
    assert [n["id"] for n in view["notes"]] == ["n2", "n3"]


def test_cn_does_not_see_eu_questions_that_may_carry_commercial_answers() -> None:
    view = view_for("CN", full_case())
    assert [r["id"] for r in view["information_requests"]] == ["r2"]
    assert "12 days" not in set(strings_anywhere(view))


def test_cn_history_hides_eu_notes_and_eu_ranking_reasons() -> None:
    history = view_for("CN", full_case())["history"]
    assert [e["id"] for e in history] == ["e1", "e2", "e4", "e5", "e6", "e7"]
    by_id = {e["id"]: e for e in history}
    assert by_id["e1"]["payload"] == {"priority": {"tier": "P1"}}
    assert by_id["e2"]["payload"] == {"tier": "P1"}
    assert by_id["e5"]["payload"] == {}
    assert by_id["e6"]["payload"] == {"accepted_on": "2026-11-02"}
    # The joint chain's hashes never pass: a side's chain fields are computed over its own
    # view (audit_service.history_for), since a hash over hidden fields can be enumerated (F1).
    assert "hash" not in by_id["e6"] and "prev_hash" not in by_id["e6"]


# --- EU --------------------------------------------------------------------------------


def test_eu_sees_everything_but_cn_notes() -> None:
    case = full_case()
    view = view_for("EU", case)
    assert view["application"] == case["application"]
    assert view["priority"] == case["priority"]
    assert [n["id"] for n in view["notes"]] == ["n1", "n3"]
    assert [d["id"] for d in view["documents"]] == ["d1", "d2"]
    assert [e["id"] for e in view["history"]] == ["e1", "e2", "e3", "e5", "e6", "e7"]
    assert "exporter under audit" not in set(strings_anywhere(view))
    assert "audit" not in set(strings_anywhere(view["history"]))


# --- applicant -------------------------------------------------------------------------


def test_applicant_sees_the_tier_only_and_no_notes() -> None:
    view = view_for("applicant", full_case())
    assert view["priority"] == {"tier": "P1"}
    assert "notes" not in view
    assert not {"score", "fired", "rules_version", "list_number"} & set(keys_anywhere(view))


def test_applicant_sees_only_the_eu_point_of_contact() -> None:
    view = view_for("applicant", full_case())
    assert view["points_of_contact"] == {"EU": {"name": "Anna Weber", "email": "anna@ec.europa.eu"}}
    assert "Li Wei" not in set(strings_anywhere(view))


def test_applicant_history_has_no_officials_notes_or_internal_reasons() -> None:
    history = view_for("applicant", full_case())["history"]
    assert [e["action"] for e in history] == [
        "open",
        "fast_track",
        "acknowledge",
        "request_information",
    ]
    assert all(e["actor"] == {"side": e["actor"]["side"]} for e in history)
    assert history[0]["payload"] == {"priority": {"tier": "P1"}}
    assert history[1]["payload"] == {}
    assert "hash" not in history[0]


# --- allow-list, not deny-list ---------------------------------------------------------


def test_new_fields_are_hidden_from_every_side_until_allowed() -> None:
    case = full_case()
    case["risk_assessment"] = "internal"
    case["application"]["exporter"]["bank_account"] = "CN00 1234"
    case["priority"]["fired"][0]["weights"] = {"x": 1}
    for side in ("EU", "CN", "applicant"):
        view = view_for(side, case)
        keys = set(keys_anywhere(view))
        assert not {"risk_assessment", "bank_account", "weights"} & keys, side


def test_the_input_case_is_not_modified() -> None:
    case = full_case()
    before = copy.deepcopy(case)
    view_for("CN", case)["application"]["goods"][0]["element"] = "Tb"
    assert case == before


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from([*sorted(CN_HIDDEN_KEYS), "x", "tier"]), inner, max_size=3
        )
    ),
    max_leaves=10,
)


def plant(case: Any, path: list[int], key: str, value: Any) -> None:
    """Put `key: value` into the dict reached by following `path` through the case."""
    node = case
    for step in path:
        children = list(node.values()) if isinstance(node, dict) else node
        containers = [c for c in children if isinstance(c, dict | list)]
        if not containers:
            break
        node = containers[step % len(containers)]
    while isinstance(node, list) and node:
        node = node[0]
    if isinstance(node, dict):
        node[key] = value


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(min_value=0, max_value=20), max_size=6),
            st.sampled_from(sorted(CN_HIDDEN_KEYS)),
            json_values,
        ),
        max_size=5,
    )
)
def test_cn_hidden_keys_never_leak_at_any_nesting(plants: list[tuple[list[int], str, Any]]) -> None:
    case = full_case()
    for path, key, value in plants:
        plant(case, path, key, value)
    assert not CN_HIDDEN_KEYS & set(keys_anywhere(view_for("CN", case)))
