"""The officials' daily digest as rules: which of a side's cases it lists, and when it is due.

Pure: the rows are the side's view of its open cases with a stage deadline (queue.py reads
them, visibility.view_for shaped them), so the digest can hold nothing the side may not see.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from services.review.domain.calendar import add_working_days, is_working_day
from services.review.domain.protocol import CalendarSide

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Digest:
    """One official's digest of one day: overdue cases, then those due by `horizon`."""

    day: date
    horizon: date
    working_days: int
    overdue: list[Row] = field(default_factory=list)
    due: list[Row] = field(default_factory=list)


def stage_due(row: Row) -> date | None:
    due = (row.get("deadlines") or {}).get("stage_due")
    return due if isinstance(due, date) else None


def horizon(side: CalendarSide, day: date, working_days: int) -> date:
    """The last day a case may be due on to be listed as due: `working_days` of the side's
    working days after `day`."""
    return add_working_days(side, day, working_days)


def digest_of(rows: Iterable[Row], day: date, until: date, working_days: int) -> Digest:
    """The rows overdue on `day` (their stage deadline passed) and those due from `day` to
    `until`, each list by deadline then reference; rows without a deadline or due later are
    left out."""
    dated = [(due, row) for row in rows if (due := stage_due(row)) is not None and due <= until]
    dated.sort(key=lambda pair: (pair[0], str(pair[1].get("reference", ""))))
    return Digest(
        day,
        until,
        working_days,
        overdue=[row for due, row in dated if due < day],
        due=[row for due, row in dated if due >= day],
    )


def is_digest_time(now: datetime, hour: int, side: CalendarSide) -> bool:
    """Whether a side's digest of today goes out by now: from `hour` (UTC) of each of the
    side's working days."""
    return now.hour >= hour and is_working_day(side, now.date())
