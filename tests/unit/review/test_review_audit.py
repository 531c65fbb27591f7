"""The audit hash chain: built by append, and any alteration, removal or reordering detected."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.review.domain.audit import (
    BACK_IN_TIME,
    GENESIS_HASH,
    AuditEntry,
    append,
    canonical_json,
    entry_hash,
    verify,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STEPS: list[tuple[str, str | None, str, str, str, dict[str, Any]]] = [
    ("system", None, "open", "submitted", "eu_screening", {"priority": {"tier": "P1"}}),
    ("EU", "officer", "admit", "eu_screening", "queued", {}),
    ("EU", "supervisor", "fast_track", "queued", "cn_review", {"reason": "line stops"}),
    ("CN", "officer", "acknowledge", "cn_review", "cn_review", {"accepted_on": "2026-03-04"}),
    ("CN", "officer", "refuse", "cn_review", "refused", {"reason": "listed_entity"}),
]


def history(hours: list[float] | None = None) -> list[AuditEntry]:
    """The steps' entries, an hour apart (or at these hours after START), chained in order."""
    hours = hours if hours is not None else list(range(len(STEPS)))
    entries: list[AuditEntry] = []
    for n, (side, role, action, before, after, payload) in enumerate(STEPS):
        entry = AuditEntry(
            id=f"e{n + 1}",
            case_id="case-1",
            seq=0,
            actor_id=f"{side}-{role}",
            actor_side=side,
            actor_role=role,
            action=action,
            at=START + timedelta(hours=hours[n]),
            from_state=before,
            to_state=after,
            payload=payload,
        )
        entries.append(append(entries[-1] if entries else None, entry))
    return entries


def test_an_untouched_history_verifies() -> None:
    entries = history()
    assert verify(entries).ok
    assert entries[0].prev_hash == GENESIS_HASH
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(entries))
    assert verify(entries, expected_head=entries[-1].hash).ok
    assert verify([]).ok


def test_an_intact_chain_that_goes_back_in_time_is_named_at_the_entry() -> None:
    """Admitted before it was opened (issue 23: the simulator's back-dated steps)."""
    entries = history([5, 2, 6, 7, 8])
    result = verify(entries)
    assert not result.ok
    assert (result.first_bad_index, result.entry_id) == (1, "e2")
    assert str(result.reason).startswith(BACK_IN_TIME)
    assert verify(history([0, 0, 1, 1, 2])).ok, "entries at the same moment are in order"


def test_an_altered_payload_is_detected_at_that_entry() -> None:
    entries = history()
    entries[2] = dataclasses.replace(entries[2], payload={"reason": "a friend asked"})
    result = verify(entries)
    assert (result.ok, result.first_bad_index, result.entry_id) == (False, 2, "e3")
    assert "altered" in (result.reason or "")


def test_an_altered_actor_or_time_is_detected() -> None:
    for change in (
        {"actor_side": "EU"},
        {"at": START + timedelta(days=9)},
        {"to_state": "approved"},
    ):
        entries = history()
        entries[4] = dataclasses.replace(entries[4], **change)
        assert verify(entries).first_bad_index == 4, change


def test_an_altered_entry_with_a_recomputed_hash_breaks_the_next_link() -> None:
    entries = history()
    forged = dataclasses.replace(entries[1], payload={"note": "forged"})
    entries[1] = dataclasses.replace(forged, hash=entry_hash(forged, forged.prev_hash))
    result = verify(entries)
    assert (result.ok, result.first_bad_index) == (False, 2)


def test_a_removed_entry_is_detected() -> None:
    entries = history()
    del entries[1]
    result = verify(entries)
    assert (result.ok, result.first_bad_index, result.entry_id) == (False, 1, "e3")


def test_reordered_entries_are_detected() -> None:
    entries = history()
    entries[1], entries[2] = entries[2], entries[1]
    assert verify(entries).first_bad_index == 1


def test_removing_the_last_entries_is_caught_against_the_recorded_head() -> None:
    entries = history()
    head = entries[-1].hash
    assert verify(entries[:-1]).ok  # a shorter chain is self-consistent...
    result = verify(entries[:-1], expected_head=head)
    assert not result.ok  # ...but does not end where the case says it does
    assert result.first_bad_index == 3


def test_an_entry_from_another_case_does_not_fit() -> None:
    entries = history()
    entries[3] = dataclasses.replace(entries[3], case_id="case-2")
    assert verify(entries).first_bad_index == 3


def test_the_hash_does_not_depend_on_key_order_or_time_zone() -> None:
    entry = history()[3]
    shuffled = dataclasses.replace(
        entry,
        payload=dict(reversed(list({"b": 1, "a": [1, 2]}.items()))),
        at=entry.at.astimezone(timezone(timedelta(hours=8))),  # the same instant in Beijing
    )
    ordered = dataclasses.replace(entry, payload={"a": [1, 2], "b": 1})
    assert entry_hash(shuffled, "x") == entry_hash(ordered, "x")
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_entries_need_aware_times_and_json_payloads() -> None:
    entry = history()[0]
    with pytest.raises(ValueError, match="timezone-aware"):
        entry_hash(dataclasses.replace(entry, at=datetime(2026, 3, 2, 9, 0)), GENESIS_HASH)
    with pytest.raises(TypeError):
        entry_hash(dataclasses.replace(entry, payload={"x": {1, 2}}), GENESIS_HASH)
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_entries_of_different_cases_cannot_be_chained() -> None:
    first = history()[0]
    other = dataclasses.replace(first, id="z", case_id="case-2")
    with pytest.raises(ValueError):
        append(first, other)
