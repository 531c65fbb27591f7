"""The protocol engine against PROTOCOL.md's actions table, written out here independently."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.review.domain.errors import (
    ActionForbidden,
    ActionNotAllowedForTier,
    ActionNotAllowedInState,
    InvalidActionParameters,
    InvalidProtocol,
    UnknownAction,
    UnknownState,
)
from services.review.domain.protocol import Actor, Protocol

PROTOCOL = Protocol.load()

EU_OFFICER = Actor("EU", "officer")
EU_SUPERVISOR = Actor("EU", "supervisor")
CN_OFFICER = Actor("CN", "officer")
CN_SUPERVISOR = Actor("CN", "supervisor")
SYSTEM = Actor("system")
APPLICANT = Actor("applicant")
ACTORS = [EU_OFFICER, EU_SUPERVISOR, CN_OFFICER, CN_SUPERVISOR, SYSTEM, APPLICANT]

TERMINAL = {"approved", "refused", "not_admitted", "withdrawn", "lapsed"}
NON_TERMINAL = {
    "submitted", "eu_screening", "awaiting_applicant", "queued", "cn_review", "joint_review",
}  # fmt: skip
STATES = TERMINAL | NON_TERMINAL
TIERS = ["P1", "P2", "P3", None]

# PROTOCOL.md, "Actions", transcribed by hand: who (side, role; officer also admits that
# side's supervisor), from which states, to which state ("same"/"previous" as in the file).
TABLE: dict[str, tuple[set[tuple[str, str | None]], set[str], str]] = {
    "open": ({("system", None)}, {"submitted"}, "eu_screening"),
    "request_information": (
        {("EU", "officer"), ("CN", "officer")},
        {"eu_screening", "cn_review", "joint_review"},
        "awaiting_applicant",
    ),
    "answer": ({("applicant", None)}, {"awaiting_applicant"}, "previous"),
    "admit": ({("EU", "officer")}, {"eu_screening"}, "queued"),
    "decline": ({("EU", "officer")}, {"eu_screening"}, "not_admitted"),
    "set_priority": ({("EU", "supervisor")}, {"eu_screening", "queued"}, "same"),
    "issue_priority_list": ({("EU", "supervisor")}, {"queued"}, "cn_review"),
    "fast_track": ({("EU", "supervisor")}, {"queued"}, "cn_review"),
    "acknowledge": ({("CN", "officer")}, {"cn_review"}, "same"),
    # Issue 18: a mistyped acceptance date is corrected by its own action, after acknowledge.
    "correct_acceptance_date": ({("CN", "supervisor")}, {"cn_review", "joint_review"}, "same"),
    "escalate": (
        {("EU", "supervisor"), ("CN", "supervisor"), ("system", None)},
        {"cn_review"},
        "joint_review",
    ),
    "return_to_review": ({("CN", "supervisor")}, {"joint_review"}, "cn_review"),
    "approve": ({("CN", "officer")}, {"cn_review", "joint_review"}, "approved"),
    "refuse": ({("CN", "officer")}, {"cn_review", "joint_review"}, "refused"),
    "withdraw": ({("applicant", None)}, NON_TERMINAL, "withdrawn"),
    "lapse": ({("system", None)}, {"awaiting_applicant"}, "lapsed"),
    "rescore": ({("system", None)}, NON_TERMINAL, "same"),
}
P1_ONLY = {"fast_track"}
# Actions taken only after these once-only ones (the matrix passes them as taken).
AFTER = {"correct_acceptance_date": {"acknowledge"}}
MEETING = {"held_on": "2026-05-20", "participants": ["eu-1", "cn-1"], "outcome": "agreed"}

VALID_PARAMS: dict[str, dict[str, Any]] = {
    "request_information": {"question": "Who is the end user of the magnets?"},
    "answer": {"answer": "Bosch GmbH, Stuttgart"},
    "decline": {"reason": "goods_not_controlled"},
    "set_priority": {"tier": "P1", "reason": "line stops on Monday"},
    "rescore": {"tier": "P2", "reason": "production stop 20 days away"},
    "issue_priority_list": {"list_number": 9, "position": 3},
    "fast_track": {"reason": "line stops on Monday"},
    "acknowledge": {"accepted_on": "2026-03-02"},
    "correct_acceptance_date": {"accepted_on": "2026-03-03", "reason": "typed 2 for 3"},
    "escalate": {"reason": "no answer for 20 working days"},
    "return_to_review": {"meeting": MEETING},
    "approve": {
        "licence": {"type": "three_month", "number": "L-2026-1", "valid_from": "2026-03-10"},
        "meeting": MEETING,
    },
    "refuse": {"reason": "listed_entity", "meeting": MEETING},
}


def may_act(actor: Actor, allowed: set[tuple[str, str | None]]) -> bool:
    if (actor.side, actor.role) in allowed:
        return True
    return actor.role == "supervisor" and (actor.side, "officer") in allowed


def expected_target(action: str, state: str) -> str:
    to = TABLE[action][2]
    if to == "same":
        return state
    if to == "previous":
        return "cn_review"  # the previous_state the matrix passes in
    return to


def test_the_table_covers_every_action_of_the_protocol() -> None:
    assert set(PROTOCOL.actions) == set(TABLE)
    assert set(PROTOCOL.states) == STATES
    assert {s for s in STATES if PROTOCOL.is_terminal(s)} == TERMINAL


@pytest.mark.parametrize("actor", ACTORS, ids=str)
@pytest.mark.parametrize("action", sorted(TABLE))
def test_engine_matches_the_actions_table(action: str, actor: Actor) -> None:
    allowed_actors, from_states, _ = TABLE[action]
    for state in sorted(STATES):
        for tier in TIERS:
            where = f"{action} by {actor} in {state} at tier {tier}"

            def decide(state: str = state, tier: str | None = tier) -> Any:
                return PROTOCOL.decide(
                    action,
                    actor,
                    state,
                    tier=tier,
                    params=VALID_PARAMS.get(action, {}),
                    previous_state="cn_review",
                    today=date(2026, 6, 1),
                    taken=AFTER.get(action, ()),
                )

            if not may_act(actor, allowed_actors):
                with pytest.raises(ActionForbidden):
                    decide()
                continue
            if state not in from_states:
                with pytest.raises(ActionNotAllowedInState):
                    decide()
                continue
            if action in P1_ONLY and tier != "P1":
                with pytest.raises(ActionNotAllowedForTier):
                    decide()
                continue
            transition = decide()
            assert transition.to_state == expected_target(action, state), where
            assert transition.from_state == state, where
            in_list = action in PROTOCOL.allowed_actions(
                actor, state, tier, taken=AFTER.get(action, ())
            )
            assert in_list, f"{where}: decide allows it but allowed_actions omits it"


def test_allowed_actions_agree_with_decide_everywhere() -> None:
    for actor in ACTORS:
        for state in STATES:
            for tier in TIERS:
                expected = [
                    action
                    for action, (who, states, _) in TABLE.items()
                    if may_act(actor, who)
                    and state in states
                    and (action not in P1_ONLY or tier == "P1")
                    and action not in AFTER  # nothing taken yet
                ]
                assert sorted(PROTOCOL.allowed_actions(actor, state, tier)) == sorted(expected)


def test_terminal_states_allow_no_action_by_anyone() -> None:
    for state in TERMINAL:
        for actor in ACTORS:
            assert PROTOCOL.allowed_actions(actor, state, "P1") == []


def test_cn_officer_cannot_admit_a_case() -> None:
    with pytest.raises(ActionForbidden):
        PROTOCOL.decide("admit", CN_OFFICER, "eu_screening")


def test_eu_officer_cannot_approve_even_in_cn_review() -> None:
    with pytest.raises(ActionForbidden):
        PROTOCOL.decide("approve", EU_OFFICER, "cn_review", params=VALID_PARAMS["approve"])


def test_eu_supervisor_may_do_what_eu_officers_do() -> None:
    assert PROTOCOL.decide("admit", EU_SUPERVISOR, "eu_screening").to_state == "queued"


def test_eu_officer_cannot_override_priority() -> None:
    with pytest.raises(ActionForbidden):
        PROTOCOL.decide("set_priority", EU_OFFICER, "queued", params=VALID_PARAMS["set_priority"])


def test_wrong_side_is_reported_before_wrong_state() -> None:
    # A CN officer trying to admit a case already in China gets 403, not 409.
    with pytest.raises(ActionForbidden):
        PROTOCOL.decide("admit", CN_OFFICER, "cn_review")


def test_admitting_twice_is_a_state_conflict() -> None:
    with pytest.raises(ActionNotAllowedInState) as raised:
        PROTOCOL.decide("admit", EU_OFFICER, "queued")
    assert raised.value.state == "queued"


def test_fast_track_is_only_for_p1_cases() -> None:
    with pytest.raises(ActionNotAllowedForTier, match="P1"):
        PROTOCOL.decide("fast_track", EU_SUPERVISOR, "queued", tier="P2", params={"reason": "x"})
    transition = PROTOCOL.decide(
        "fast_track", EU_SUPERVISOR, "queued", tier="P1", params={"reason": "line stops"}
    )
    assert transition.to_state == "cn_review"


def test_set_priority_is_refused_while_the_applicant_holds_the_case() -> None:
    with pytest.raises(ActionNotAllowedInState):
        PROTOCOL.decide(
            "set_priority", EU_SUPERVISOR, "awaiting_applicant", params=VALID_PARAMS["set_priority"]
        )


def test_answer_returns_the_case_to_the_state_it_came_from() -> None:
    for previous in ("eu_screening", "cn_review", "joint_review"):
        transition = PROTOCOL.decide(
            "answer",
            APPLICANT,
            "awaiting_applicant",
            params={"answer": "see attached"},
            previous_state=previous,
        )
        assert transition.to_state == previous


def test_answer_without_a_valid_previous_state_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="previous_state"):
        PROTOCOL.decide("answer", APPLICANT, "awaiting_applicant", params={"answer": "x"})
    with pytest.raises(ValueError, match="previous_state"):
        PROTOCOL.decide(
            "answer",
            APPLICANT,
            "awaiting_applicant",
            params={"answer": "x"},
            previous_state="queued",
        )


def test_unknown_action_and_unknown_state_are_reported() -> None:
    with pytest.raises(UnknownAction):
        PROTOCOL.decide("bribe", EU_OFFICER, "eu_screening")
    with pytest.raises(UnknownState):
        PROTOCOL.decide("admit", EU_OFFICER, "limbo")


def test_actor_roles_are_consistent() -> None:
    with pytest.raises(ValueError):
        Actor("EU")
    with pytest.raises(ValueError):
        Actor("applicant", "officer")


# --- parameters ------------------------------------------------------------------------


def errors_of(action: str, actor: Actor, state: str, params: dict[str, Any], **kw: Any) -> dict:
    with pytest.raises(InvalidActionParameters) as raised:
        PROTOCOL.decide(action, actor, state, params=params, **kw)
    return {e["field"]: e["message"] for e in raised.value.as_dicts()}


def test_request_information_needs_a_question() -> None:
    assert errors_of("request_information", EU_OFFICER, "eu_screening", {}) == {
        "question": "is required"
    }
    blank = errors_of("request_information", EU_OFFICER, "eu_screening", {"question": "  "})
    assert blank == {"question": "must not be empty"}


def test_question_is_bounded_to_4000_characters() -> None:
    ok = PROTOCOL.decide(
        "request_information", CN_OFFICER, "cn_review", params={"question": "q" * 4000}
    )
    assert len(ok.params["question"]) == 4000
    errors = errors_of("request_information", CN_OFFICER, "cn_review", {"question": "q" * 4001})
    assert errors == {"question": "must be at most 4000 characters"}


@pytest.mark.parametrize(
    ("due", "message"),
    [
        (0, "must be at least 1"),
        (21, "must be at most 20"),
        ("5", "must be an integer"),
        (True, "must be an integer"),
        (2.5, "must be an integer"),
    ],
)
def test_answer_period_is_a_whole_number_of_1_to_20_working_days(due: Any, message: str) -> None:
    params = {"question": "Which plant?", "due_in_working_days": due}
    errors = errors_of("request_information", EU_OFFICER, "eu_screening", params)
    assert errors == {"due_in_working_days": message}


def test_all_parameter_errors_are_reported_at_once() -> None:
    errors = errors_of(
        "approve",
        CN_OFFICER,
        "cn_review",
        {
            "licence": {
                "type": "forever",
                "valid_from": "2026-02-30",
                "lines": [{"line": 0, "approved_quantity_kg": -1}, {"approved_quantity_kg": "x"}],
            }
        },
    )
    assert errors == {
        "licence.type": "must be one of three_month, annual, general",
        "licence.number": "is required",
        "licence.valid_from": "must be a date (YYYY-MM-DD)",
        "licence.lines[0].line": "must be at least 1",
        "licence.lines[0].approved_quantity_kg": "must be at least 0",
        "licence.lines[1].line": "is required",
        "licence.lines[1].approved_quantity_kg": "must be a number",
    }


def test_decline_reason_must_be_a_known_code() -> None:
    errors = errors_of("decline", EU_OFFICER, "eu_screening", {"reason": "dont_like_it"})
    assert errors["reason"].startswith("must be one of out_of_scope,")


def test_reason_other_needs_a_detail() -> None:
    assert errors_of("refuse", CN_OFFICER, "cn_review", {"reason": "other"}) == {
        "detail": "is required when reason is other"
    }
    refused = PROTOCOL.decide(
        "refuse", CN_OFFICER, "cn_review", params={"reason": "other", "detail": "quota"}
    )
    assert refused.params == {"reason": "other", "detail": "quota"}


def test_acknowledgement_date_cannot_be_in_the_future() -> None:
    errors = errors_of(
        "acknowledge",
        CN_OFFICER,
        "cn_review",
        {"accepted_on": "2026-06-02"},
        today=date(2026, 6, 1),
    )
    assert errors == {"accepted_on": "must not be after today (2026-06-01)"}


def test_acknowledgement_date_cannot_be_before_the_submission() -> None:
    for accepted_on in ("0001-01-01", "2026-05-31"):
        errors = errors_of(
            "acknowledge",
            CN_OFFICER,
            "cn_review",
            {"accepted_on": accepted_on},
            today=date(2026, 6, 10),
            submitted_on=date(2026, 6, 1),
        )
        assert errors == {
            "accepted_on": "must not be before the application's submission (2026-06-01)"
        }
    on_the_day = PROTOCOL.decide(
        "acknowledge",
        CN_OFFICER,
        "cn_review",
        params={"accepted_on": "2026-06-01"},
        today=date(2026, 6, 10),
        submitted_on=date(2026, 6, 1),
    )
    assert on_the_day.params == {"accepted_on": date(2026, 6, 1)}


def test_acknowledge_is_neither_offered_nor_taken_a_second_time() -> None:
    assert "acknowledge" in PROTOCOL.allowed_actions(CN_OFFICER, "cn_review", "P2")
    offered = PROTOCOL.allowed_actions(CN_OFFICER, "cn_review", "P2", taken={"acknowledge"})
    assert "acknowledge" not in offered and "approve" in offered
    with pytest.raises(ActionNotAllowedInState, match="taken once"):
        PROTOCOL.decide(
            "acknowledge",
            CN_OFFICER,
            "cn_review",
            params={"accepted_on": "2026-06-01"},
            taken={"acknowledge"},
        )
    # An action that is not `once` is unaffected by having been taken.
    assert "escalate" in PROTOCOL.allowed_actions(CN_SUPERVISOR, "cn_review", taken={"escalate"})


@pytest.mark.parametrize(
    ("valid_from", "message"),
    [
        ("9999-12-01", "must not be after 2027-06-01"),
        ("2027-06-02", "must not be after 2027-06-01"),
        ("0001-01-01", "must not be before 2025-06-01"),
    ],
)
def test_a_licence_starts_within_a_year_of_today(valid_from: str, message: str) -> None:
    licence = {"type": "three_month", "number": "L-1", "valid_from": valid_from}
    errors = errors_of(
        "approve", CN_OFFICER, "cn_review", {"licence": licence}, today=date(2026, 6, 1)
    )
    assert errors == {"licence.valid_from": message}


def test_parameters_are_normalised_and_extra_ones_kept_apart() -> None:
    transition = PROTOCOL.decide(
        "acknowledge",
        CN_OFFICER,
        "cn_review",
        params={"accepted_on": "2026-03-02", "mofcom_officer": "Li"},
    )
    assert transition.params == {"accepted_on": date(2026, 3, 2)}
    assert transition.extra == {"mofcom_officer": "Li"}
    assert transition.payload() == {"accepted_on": "2026-03-02"}
    assert not transition.changes_state


def test_set_priority_tier_must_be_p1_p2_or_p3() -> None:
    errors = errors_of("set_priority", EU_SUPERVISOR, "queued", {"tier": "P0", "reason": "x"})
    assert errors == {"tier": "must be one of P1, P2, P3"}


# --- the served document and loading -----------------------------------------------------


def test_protocol_document_lists_states_actions_deadlines_and_licence_types() -> None:
    document = PROTOCOL.as_document()
    assert document["version"] == PROTOCOL.version
    assert document["states"]["awaiting_applicant"]["clock"] == "paused"
    assert document["states"]["cn_review"]["holder"] == "CN"
    assert document["actions"]["withdraw"]["from"] == sorted(
        NON_TERMINAL, key=list(PROTOCOL.states).index
    )
    question = document["actions"]["request_information"]["params"]["question"]
    assert question == {"type": "str", "required": True, "max_length": 4000}
    assert document["deadlines"]["cn_review"]["statutory"] == 45
    assert document["deadlines"]["cn_review"]["target"] == {"normal": 20, "P1": 10}
    assert document["deadlines"]["awaiting_applicant"]["lapse"] == 20
    assert document["licence_types"]["general"]["max_validity_months"] == 36
    assert "military_end_use" in document["reason_codes"]["refuse"]


def test_a_protocol_naming_an_unknown_state_does_not_load() -> None:
    data = PROTOCOL.spec.model_dump(by_alias=True, exclude_none=True)
    data["actions"]["admit"]["to"] = "admitted"
    with pytest.raises(InvalidProtocol, match="unknown to-state 'admitted'"):
        Protocol.from_dict(data)


def test_a_protocol_with_a_misspelt_key_does_not_load() -> None:
    data = PROTOCOL.spec.model_dump(by_alias=True, exclude_none=True)
    data["actions"]["admit"]["bye"] = data["actions"]["admit"].pop("by")
    with pytest.raises(InvalidProtocol):
        Protocol.from_dict(data)
