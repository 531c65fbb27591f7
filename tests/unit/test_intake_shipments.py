"""The applicant's licence with its shipments (services/intake/domain.py, `with_shipment`):
each shipment once by its id, in date order; what remains as of the latest event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.intake.domain import with_shipment

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LICENCE = {"number": "LIC-1", "status": "active", "lines": [{"line": 1, "element": "Nd"}]}


def _shipment(id_: str, on: str, kg: float) -> dict[str, Any]:
    return {"id": id_, "shipped_on": on, "lines": [{"line": 1, "element": "Nd", "quantity_kg": kg}]}


def _left(kg: float) -> list[dict[str, Any]]:
    return [{"line": 1, "element": "Nd", "form": "oxide", "remaining_kg": kg}]


def test_a_shipment_is_added_with_what_remains_and_the_licence_is_kept() -> None:
    got = with_shipment(LICENCE, "LIC-1", _shipment("a", "2026-12-01", 60), _left(40), "active", T0)
    assert got["lines"] == LICENCE["lines"] and got["number"] == "LIC-1"
    assert [s["id"] for s in got["shipments"]] == ["a"]
    assert got["remaining"] == _left(40)
    assert "shipments" not in LICENCE, "the stored licence is not changed in place"


def test_the_same_shipment_twice_is_kept_once() -> None:
    once = with_shipment(
        LICENCE, "LIC-1", _shipment("a", "2026-12-01", 60), _left(40), "active", T0
    )
    twice = with_shipment(once, "LIC-1", _shipment("a", "2026-12-01", 60), _left(40), "active", T0)
    assert twice == once


def test_shipments_are_in_date_order_and_a_late_event_does_not_undo_what_remains() -> None:
    later = T0 + timedelta(hours=1)
    second = with_shipment(
        LICENCE, "LIC-1", _shipment("b", "2026-12-02", 40), _left(0), "exhausted", later
    )
    first_late = with_shipment(
        second, "LIC-1", _shipment("a", "2026-11-30", 60), _left(40), "active", T0
    )
    assert [s["id"] for s in first_late["shipments"]] == ["a", "b"]
    assert first_late["remaining"] == _left(0) and first_late["status"] == "exhausted"


def test_a_revoked_licence_stays_revoked_and_an_unknown_one_starts_from_its_number() -> None:
    revoked = {**LICENCE, "status": "revoked", "revoked_on": "2026-12-01"}
    got = with_shipment(revoked, "LIC-1", _shipment("a", "2026-11-30", 1), _left(99), "active", T0)
    assert got["status"] == "revoked" and got["remaining"] == _left(99)
    fresh = with_shipment(None, "LIC-9", _shipment("a", "2026-11-30", 1), _left(9), "active", T0)
    assert fresh["number"] == "LIC-9" and fresh["status"] == "active"


def test_shipments_of_one_day_stay_in_the_order_recorded_whatever_their_ids() -> None:
    """The portal lists one day's shipments as China recorded them (their events' order), not
    by their random ids; a shipment's event seen again keeps its place."""
    first = with_shipment(
        LICENCE, "LIC-1", _shipment("z", "2026-12-01", 60), _left(40), "active", T0
    )
    then = with_shipment(
        first, "LIC-1", _shipment("a", "2026-12-01", 15.5), _left(24.5), "active", T0
    )
    assert [s["id"] for s in then["shipments"]] == ["z", "a"]
    again = with_shipment(then, "LIC-1", _shipment("z", "2026-12-01", 60), _left(40), "active", T0)
    assert [s["id"] for s in again["shipments"]] == ["z", "a"]
