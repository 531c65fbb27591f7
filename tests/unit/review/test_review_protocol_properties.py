"""Properties of the protocol engine over random action sequences."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.review.domain.errors import ReviewDomainError
from services.review.domain.protocol import Actor, Protocol

PROTOCOL = Protocol.load()

ACTORS = [
    Actor("EU", "officer"),
    Actor("EU", "supervisor"),
    Actor("CN", "officer"),
    Actor("CN", "supervisor"),
    Actor("system"),
    Actor("applicant"),
]
TERMINAL = {"approved", "refused", "not_admitted", "withdrawn", "lapsed"}
NON_TERMINAL = {
    "submitted", "eu_screening", "awaiting_applicant", "queued", "cn_review", "joint_review",
}  # fmt: skip

# Every state change PROTOCOL.md allows, written out by hand (set_priority and acknowledge
# keep the state, so they add no edge).
EDGES = {
    ("submitted", "eu_screening"),
    ("eu_screening", "awaiting_applicant"),
    ("cn_review", "awaiting_applicant"),
    ("joint_review", "awaiting_applicant"),
    ("awaiting_applicant", "eu_screening"),
    ("awaiting_applicant", "cn_review"),
    ("awaiting_applicant", "joint_review"),
    ("awaiting_applicant", "lapsed"),
    ("eu_screening", "queued"),
    ("eu_screening", "not_admitted"),
    ("queued", "cn_review"),
    ("cn_review", "joint_review"),
    ("joint_review", "cn_review"),
    ("cn_review", "approved"),
    ("joint_review", "approved"),
    ("cn_review", "refused"),
    ("joint_review", "refused"),
} | {(state, "withdrawn") for state in NON_TERMINAL}

MEETING = {"held_on": "2026-01-20", "participants": ["eu-1", "cn-1"], "outcome": "agreed"}
PARAMS: dict[str, dict[str, Any]] = {
    "request_information": {"question": "Which plant?"},
    "answer": {"answer": "Plant 3"},
    "decline": {"reason": "out_of_scope"},
    "set_priority": {"tier": "P1", "reason": "urgent"},
    "issue_priority_list": {"list_number": 1, "position": 1},
    "fast_track": {"reason": "urgent"},
    "acknowledge": {"accepted_on": "2026-01-05"},
    "escalate": {"reason": "late"},
    "correct_acceptance_date": {"accepted_on": "2026-01-06", "reason": "typo"},
    "return_to_review": {"meeting": MEETING},
    "approve": {
        "licence": {"type": "annual", "number": "L1", "valid_from": "2026-02-01"},
        "meeting": MEETING,
    },
    "refuse": {"reason": "listed_entity", "meeting": MEETING},
}

ALL_ACTIONS = sorted(PROTOCOL.actions)
CLOSING = {"withdraw", "decline", "lapse", "approve", "refuse"}

steps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10_000),  # which action
        st.integers(min_value=0, max_value=3),  # 0: any action; else one the protocol offers
        st.sampled_from(ACTORS),
        st.sampled_from(["P1", "P2", "P3"]),
        st.booleans(),  # send valid parameters or none at all
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_random_action_sequences_follow_only_protocol_edges(
    sequence: list[tuple[int, int, Actor, str, bool]],
) -> None:
    state, previous = "submitted", None
    terminal_reached = False
    for pick, mode, any_actor, tier, with_params in sequence:
        # Mostly offered actions, rarely closing ones, so walks get deep into cases; sometimes
        # anything by anyone, to hit the refusals.
        offered = [
            (a, name)
            for a in ACTORS
            for name in PROTOCOL.allowed_actions(a, state, tier)
            if name not in CLOSING or pick % 4 == 0
        ]
        candidates = offered if mode and offered else [(any_actor, n) for n in ALL_ACTIONS]
        actor, action = candidates[pick % len(candidates)]
        try:
            transition = PROTOCOL.decide(
                action,
                actor,
                state,
                tier=tier,
                params=PARAMS.get(action, {}) if with_params else {},
                previous_state=previous,
            )
        except ReviewDomainError:
            continue  # refused: nothing changes
        assert not terminal_reached, f"{action} accepted after the terminal state {state}"
        if transition.changes_state:
            assert (state, transition.to_state) in EDGES, (
                f"{action}: {state} → {transition.to_state}"
            )
        if transition.to_state == "awaiting_applicant":
            previous = state
        state = transition.to_state
        terminal_reached = state in TERMINAL
    assert state in PROTOCOL.states


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(TERMINAL)), st.sampled_from(ACTORS), st.sampled_from(["P1", None]))
def test_terminal_states_are_absorbing(state: str, actor: Actor, tier: str | None) -> None:
    for action in PROTOCOL.actions:
        try:
            PROTOCOL.decide(action, actor, state, tier=tier, params=PARAMS.get(action, {}))
        except ReviewDomainError:
            continue
        raise AssertionError(f"{action} by {actor} accepted in terminal state {state}")
