"""The officials' daily digest as rules: which rows it lists, in which order, and when a
side's digest is due (services/review/domain/digest.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from services.review.domain.digest import digest_of, horizon, is_digest_time

TUESDAY = date(2026, 12, 1)


def row(reference: str, due: date | None) -> dict[str, Any]:
    return {"reference": reference, "deadlines": {"stage_due": due}}


def test_overdue_and_due_cases_are_listed_apart_by_deadline_then_reference() -> None:
    rows = [
        row("REC-4", date(2026, 12, 3)),
        row("REC-1", date(2026, 11, 20)),
        row("REC-3", TUESDAY),
        row("REC-2", date(2026, 11, 20)),
        row("REC-0", date(2026, 11, 30)),
    ]
    digest = digest_of(rows, TUESDAY, date(2026, 12, 8), 5)
    assert [r["reference"] for r in digest.overdue] == ["REC-1", "REC-2", "REC-0"]
    assert [r["reference"] for r in digest.due] == ["REC-3", "REC-4"], "today is due, not overdue"


def test_cases_due_after_the_horizon_or_without_a_deadline_are_left_out() -> None:
    rows = [row("REC-1", date(2026, 12, 9)), row("REC-2", None), {"reference": "REC-3"}]
    digest = digest_of(rows, TUESDAY, date(2026, 12, 8), 5)
    assert digest.overdue == [] and digest.due == []


def test_the_horizon_counts_the_sides_working_days() -> None:
    assert horizon("EU", TUESDAY, 5) == date(2026, 12, 8), "over one weekend"
    assert horizon("EU", date(2026, 12, 23), 2) == date(2026, 12, 28), "Christmas in Brussels"
    assert horizon("CN", date(2026, 9, 30), 1) == date(2026, 10, 8), "China's national holiday"
    assert horizon("EU", TUESDAY, 0) == TUESDAY


def test_a_digest_is_due_from_its_hour_on_the_sides_working_days_only() -> None:
    assert not is_digest_time(datetime(2026, 12, 1, 5, 59, tzinfo=UTC), 6, "EU")
    assert is_digest_time(datetime(2026, 12, 1, 6, 0, tzinfo=UTC), 6, "EU")
    assert not is_digest_time(datetime(2026, 12, 5, 9, 0, tzinfo=UTC), 6, "EU"), "a Saturday"
    assert not is_digest_time(datetime(2026, 10, 1, 9, 0, tzinfo=UTC), 6, "CN"), "国庆节"
    assert is_digest_time(datetime(2026, 10, 1, 9, 0, tzinfo=UTC), 6, "EU")
