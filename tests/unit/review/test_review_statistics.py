"""The approval rate asks the protocol which terminal states grant or refuse a licence."""

from __future__ import annotations

from typing import Any

import pytest

from services.review.domain.errors import InvalidProtocol
from services.review.domain.protocol import Protocol
from services.review.domain.statistics import approval_rate

PROTOCOL = Protocol.load()


def _data() -> dict[str, Any]:
    return PROTOCOL.spec.model_dump(by_alias=True, exclude_none=True)


def _renamed(data: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The protocol with state `old` called `new` wherever an action names it."""
    data["states"][new] = data["states"].pop(old)
    for action in data["actions"].values():
        if action.get("to") == old:
            action["to"] = new
    return data


def test_the_packaged_protocol_grants_in_approved_and_refuses_in_refused() -> None:
    assert PROTOCOL.verdict_states("licence_granted") == ("approved",)
    assert PROTOCOL.verdict_states("licence_refused") == ("refused",)
    assert approval_rate({"approved": 3, "refused": 1, "withdrawn": 5}, PROTOCOL) == 0.75
    assert approval_rate({"withdrawn": 5, "not_admitted": 2}, PROTOCOL) is None


def test_a_renamed_state_in_a_test_protocol_still_counts() -> None:
    renamed = Protocol.from_dict(_renamed(_data(), "approved", "licence_issued"))
    outcomes = {"licence_issued": 3, "refused": 1, "approved": 100}
    # "approved" is no state of this protocol: only the granting state counts.
    assert approval_rate(outcomes, renamed) == 0.75


def test_only_a_terminal_state_has_a_verdict() -> None:
    data = _data()
    data["states"]["queued"]["verdict"] = "licence_granted"
    with pytest.raises(InvalidProtocol, match="state queued: only a terminal state"):
        Protocol.from_dict(data)
