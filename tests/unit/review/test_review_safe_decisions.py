"""Safe decisions in the protocol engine (issue 18, items 4 and 6): four eyes on a decline and
a refusal, the acceptance date corrected by its own action, the joint meeting's record, and
what each side's view shows of a pending proposal."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.review.domain.errors import (
    ActionNotAllowedInState,
    InvalidActionParameters,
    InvalidProtocol,
)
from services.review.domain.protocol import Actor, Protocol
from services.review.domain.visibility import history_entry_view, view_for

PROTOCOL = Protocol.load()
EU_OFFICER, EU_SUPERVISOR = Actor("EU", "officer"), Actor("EU", "supervisor")
CN_OFFICER, CN_SUPERVISOR = Actor("CN", "officer"), Actor("CN", "supervisor")
SIDES = {"eu-1": "EU", "eu-2": "EU", "cn-1": "CN", "cn-2": "CN"}
TODAY, ESCALATED = date(2026, 6, 10), date(2026, 6, 1)


def test_the_protocol_file_says_decline_and_refuse_need_a_countersignature() -> None:
    needing = {a for a in PROTOCOL.actions if PROTOCOL.needs_countersignature(a)}
    assert needing == {"decline", "refuse"}
    document = PROTOCOL.as_document()
    assert document["actions"]["refuse"]["countersign"] == {
        "by": {"same_side": True, "role": "supervisor"}
    }
    assert "countersign" not in document["actions"]["approve"]
    assert list(document["proposals"]) == ["countersign", "reject", "withdraw"]


@pytest.mark.parametrize(
    ("actor", "actor_id", "why"),
    [
        (CN_SUPERVISOR, "cn-1", "not by its proposer"),
        (CN_OFFICER, "cn-2", "Only a supervisor"),
        (EU_SUPERVISOR, "eu-1", "Only an official of the CN side"),
    ],
)
def test_only_a_second_supervisor_of_the_same_side_countersigns(
    actor: Actor, actor_id: str, why: str
) -> None:
    refusal = PROTOCOL.countersigner_refusal("refuse", CN_SUPERVISOR, "cn-1", actor, actor_id)
    assert refusal is not None and why in refusal
    assert (
        PROTOCOL.countersigner_refusal("refuse", CN_OFFICER, "cn-1", CN_SUPERVISOR, "cn-2") is None
    )


def test_the_proposer_or_a_countersigner_may_withdraw_nobody_else() -> None:
    assert PROTOCOL.withdrawal_refusal("decline", EU_OFFICER, "eu-1", EU_OFFICER, "eu-1") is None
    assert PROTOCOL.withdrawal_refusal("decline", EU_OFFICER, "eu-1", EU_SUPERVISOR, "eu-2") is None
    assert PROTOCOL.withdrawal_refusal("decline", EU_OFFICER, "eu-1", EU_OFFICER, "eu-2")
    assert PROTOCOL.withdrawal_refusal("decline", EU_OFFICER, "eu-1", CN_SUPERVISOR, "cn-1")


def test_an_action_without_countersign_has_no_countersigner() -> None:
    assert PROTOCOL.countersigner_refusal("admit", EU_OFFICER, "eu-1", EU_SUPERVISOR, "eu-2")


def test_a_countersign_on_a_system_action_does_not_load() -> None:
    data = PROTOCOL.spec.model_dump(by_alias=True, exclude_none=True)
    data["actions"]["lapse"]["countersign"] = {"by": {"same_side": True, "role": "supervisor"}}
    with pytest.raises(InvalidProtocol, match="only officials' actions are countersigned"):
        Protocol.from_dict(data)


def test_a_decline_or_refusal_needs_a_reason_chosen() -> None:
    for action, actor, state in (
        ("decline", EU_OFFICER, "eu_screening"),
        ("refuse", CN_OFFICER, "cn_review"),
    ):
        with pytest.raises(InvalidActionParameters) as raised:
            PROTOCOL.decide(action, actor, state, params={"reason": ""})
        assert [e.field for e in raised.value.errors] == ["reason"]


# --- the acceptance date -----------------------------------------------------------------


def test_the_acceptance_date_is_corrected_only_after_acknowledge_by_a_cn_supervisor() -> None:
    params = {"accepted_on": "2026-06-02", "reason": "typed the 1st for the 2nd"}
    with pytest.raises(ActionNotAllowedInState, match="after acknowledge"):
        PROTOCOL.decide("correct_acceptance_date", CN_SUPERVISOR, "cn_review", params=params)
    offered = PROTOCOL.allowed_actions(CN_SUPERVISOR, "cn_review", taken={"acknowledge"})
    assert "correct_acceptance_date" in offered and "acknowledge" not in offered
    assert "correct_acceptance_date" not in PROTOCOL.allowed_actions(
        CN_OFFICER, "cn_review", taken={"acknowledge"}
    )
    done = PROTOCOL.decide(
        "correct_acceptance_date",
        CN_SUPERVISOR,
        "cn_review",
        params=params,
        taken={"acknowledge"},
        today=TODAY,
    )
    assert done.params["accepted_on"] == date(2026, 6, 2) and not done.changes_state


def test_a_correction_needs_its_reason() -> None:
    with pytest.raises(InvalidActionParameters) as raised:
        PROTOCOL.decide(
            "correct_acceptance_date",
            CN_SUPERVISOR,
            "cn_review",
            params={"accepted_on": "2026-06-02"},
            taken={"acknowledge"},
        )
    assert [e.field for e in raised.value.errors] == ["reason"]


# --- the joint meeting --------------------------------------------------------------------


def _leave_joint_review(action: str, meeting: Any, **extra: Any) -> Any:
    params = {**extra, "meeting": meeting} if meeting is not None else extra
    return PROTOCOL.decide(
        action,
        CN_SUPERVISOR,
        "joint_review",
        params=params,
        today=TODAY,
        stage_started_on=ESCALATED,
        official_side=SIDES.get,
    )


LEAVING = [
    ("return_to_review", {}),
    ("refuse", {"reason": "listed_entity"}),
    ("approve", {"licence": {"type": "annual", "number": "L-1", "valid_from": "2026-06-10"}}),
]


@pytest.mark.parametrize(("action", "extra"), LEAVING)
def test_leaving_joint_review_carries_the_meeting(action: str, extra: dict[str, Any]) -> None:
    with pytest.raises(InvalidActionParameters) as raised:
        _leave_joint_review(action, None, **extra)
    assert {e.field: e.message for e in raised.value.errors} == {
        "meeting": "is required in joint_review"
    }
    meeting = {"held_on": "2026-06-05", "participants": ["eu-1", "cn-1", "eu-1"], "outcome": "x"}
    done = _leave_joint_review(action, meeting, **extra)
    assert done.payload()["meeting"] == {
        "held_on": "2026-06-05",
        "participants": ["eu-1", "cn-1"],
        "outcome": "x",
    }


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"held_on": "2026-06-11"}, "meeting.held_on", "must not be after today (2026-06-10)"),
        (
            {"held_on": "2026-05-31"},
            "meeting.held_on",
            "must not be before the stage began (2026-06-01)",
        ),
        (
            {"participants": ["eu-1", "eu-2"]},
            "meeting.participants",
            "must name officials of both sides",
        ),
        ({"participants": ["eu-1", "nobody"]}, "meeting.participants", "names no official: nobody"),
        ({"participants": ["cn-1"]}, "meeting.participants", "must have at least 2 items"),
        ({"outcome": " "}, "meeting.outcome", "must not be empty"),
    ],
)
def test_a_meeting_record_is_checked(change: dict[str, Any], field: str, message: str) -> None:
    meeting = {"held_on": "2026-06-05", "participants": ["eu-1", "cn-1"], "outcome": "x"} | change
    with pytest.raises(InvalidActionParameters) as raised:
        _leave_joint_review("return_to_review", meeting)
    assert {e.field: e.message for e in raised.value.errors} == {field: message}


def test_a_refusal_in_cn_review_needs_no_meeting() -> None:
    done = PROTOCOL.decide("refuse", CN_OFFICER, "cn_review", params={"reason": "listed_entity"})
    assert "meeting" not in done.params


# --- what each side sees of a proposal -----------------------------------------------------

SENTINEL = "SENTINEL-refusal-detail"
PROPOSAL = {
    "id": "p-1",
    "action": "refuse",
    "side": "CN",
    "params": {"reason": "other", "detail": SENTINEL},
    "status": "pending",
    "proposed_at": "2026-06-10T09:00:00Z",
    "proposed_by": {"id": "cn-1", "name": "Chen Wei", "role": "officer"},
}
ENTRY = {
    "id": "a-1",
    "seq": 4,
    "action": "proposed",
    "actor": {"id": "cn-1", "side": "CN", "role": "officer"},
    "payload": {
        "proposal_id": "p-1",
        "action": "refuse",
        "visibility": "cn",
        "params": {"reason": "other", "detail": SENTINEL},
    },
}


def test_a_pending_proposal_is_shown_to_its_side_only() -> None:
    case = {"id": "c", "proposals": [PROPOSAL], "history": [ENTRY]}
    cn = view_for("CN", case)
    assert cn["proposals"][0]["params"]["detail"] == SENTINEL
    assert cn["history"][0]["payload"]["params"]["detail"] == SENTINEL
    for other in ("EU", "applicant"):
        seen = view_for(other, case)  # type: ignore[arg-type]
        assert SENTINEL not in repr(seen) and "p-1" not in repr(seen), other
        assert history_entry_view(other, ENTRY) is None  # type: ignore[arg-type]


def test_a_countersigned_decision_names_its_proposal_to_officials_not_the_applicant() -> None:
    entry = ENTRY | {
        "action": "refuse",
        "payload": {"reason": "listed_entity", "proposal_id": "p-1", "proposed_by": "cn-1"},
    }
    assert history_entry_view("EU", entry)["payload"]["proposed_by"] == "cn-1"  # type: ignore[index]
    applicant = history_entry_view("applicant", entry)
    assert applicant is not None and applicant["payload"] == {"reason": "listed_entity"}


def test_the_joint_meeting_is_for_the_officials_of_both_sides_not_the_applicant() -> None:
    meeting = {"held_on": "2026-06-05", "participants": ["eu-1", "cn-1"], "outcome": "agreed"}
    entry = {
        "id": "a-2",
        "seq": 9,
        "action": "approve",
        "actor": {"id": "cn-2", "side": "CN", "role": "supervisor"},
        "payload": {"licence": {"number": "L-1"}, "meeting": meeting},
    }
    for side in ("EU", "CN"):
        shown = history_entry_view(side, entry)  # type: ignore[arg-type]
        assert shown is not None and shown["payload"]["meeting"] == meeting
    applicant = history_entry_view("applicant", entry)
    assert applicant is not None and applicant["payload"] == {"licence": {"number": "L-1"}}
    case = {"joint_meetings": [{"action": "approve", "held_on": "2026-06-05", "outcome": "x"}]}
    assert view_for("EU", case)["joint_meetings"] == view_for("CN", case)["joint_meetings"]
    assert "joint_meetings" not in view_for("applicant", case)
