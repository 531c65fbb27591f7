"""The metrics' arithmetic: working days counted fast, percentiles, distributions, rates.

Pure: no database, no HTTP. docs/metrics.md defines each figure; the benchmarks use the
same percentile.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from services.review.domain.calendar import is_working_day
from services.review.domain.protocol import CalendarSide, Protocol

# Backlog age bands, in EU working days since the case was opened: (label, upper bound).
AGE_BANDS: tuple[tuple[str, int | None], ...] = (
    ("0-5", 5),
    ("6-10", 10),
    ("11-20", 20),
    ("21-45", 45),
    ("over 45", None),
)


class WorkingDays:
    """working_days_between with prefix sums: thousands of intervals over months stay cheap."""

    def __init__(self) -> None:
        self._start: dict[str, date] = {}
        self._prefix: dict[str, list[int]] = {}

    def _ensure(self, side: CalendarSide, first: date, last: date) -> None:
        start = self._start.get(side)
        prefix = self._prefix.get(side)
        if start is not None and prefix is not None:
            end = start + timedelta(days=len(prefix) - 1)
            if start <= first and last <= end:
                return
            first, last = min(first, start), max(last, end)
        # Margin so that neighbouring look-ups reuse the table.
        first, last = first - timedelta(days=31), last + timedelta(days=31)
        counts = [0]
        day = first
        while day < last:
            day += timedelta(days=1)
            counts.append(counts[-1] + (1 if is_working_day(side, day) else 0))
        self._start[side], self._prefix[side] = first, counts

    def between(self, side: CalendarSide, start: date, end: date) -> int:
        """Working days in (start, end], as calendar.working_days_between counts them."""
        if end < start:
            return -self.between(side, end, start)
        self._ensure(side, start, end)
        base, prefix = self._start[side], self._prefix[side]
        return prefix[(end - base).days] - prefix[(start - base).days]


def _interpolated(kth: Callable[[int], float], count: int, q: float) -> float | None:
    """The q-th percentile (0..100) of `count` values, the k-th smallest being kth(k)."""
    if not count:
        return None
    rank = (count - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    if low == high:
        return float(kth(low))
    low_value, high_value = kth(low), kth(high)
    return low_value + (high_value - low_value) * (rank - low)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks.

    The same definition as numpy's default and statistics.quantiles(method="inclusive");
    q=50 is the usual median (the mean of the two middle values for an even count).
    """
    ordered = sorted(values)
    return _interpolated(ordered.__getitem__, len(ordered), q)


def hist_percentile(hist: Mapping[int, int], q: float) -> float | None:
    """percentile() of the values a histogram (value -> how many) stands for."""
    values = sorted((v, n) for v, n in hist.items() if n > 0)

    def kth(k: int) -> int:
        seen = 0
        for value, n in values:
            seen += n
            if k < seen:
                return value
        raise IndexError(k)

    return _interpolated(kth, sum(n for _, n in values), q)


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def distribution(values: Sequence[float]) -> dict[str, Any]:
    return {
        "cases": len(values),
        "median": rounded(percentile(values, 50)),
        "p90": rounded(percentile(values, 90)),
    }


def hist_distribution(hist: Mapping[int, int]) -> dict[str, Any]:
    return {
        "cases": sum(n for n in hist.values() if n > 0),
        "median": rounded(hist_percentile(hist, 50)),
        "p90": rounded(hist_percentile(hist, 90)),
    }


# Decisions taken in fewer EU working days than this are counted (`under_floor`) but left out
# of the monthly processing-time figures (docs/metrics.md): the record's fastest licence took
# a week, so a decision on the day of opening is the live demo's, made seconds after its
# submission, and would otherwise drag its month's median to zero.
MIN_PROCESSING_DAYS = 1


def floored_distribution(hist: Mapping[int, int]) -> dict[str, Any]:
    """hist_distribution() of the values of at least MIN_PROCESSING_DAYS, and how many less."""
    kept = {days: n for days, n in hist.items() if days >= MIN_PROCESSING_DAYS}
    under = sum(n for days, n in hist.items() if days < MIN_PROCESSING_DAYS and n > 0)
    return {**hist_distribution(kept), "under_floor": under}


def approval_rate(outcomes: Mapping[str, int], protocol: Protocol) -> float | None:
    """granted / (granted + refused), counting the cases (`outcomes`: terminal state -> how
    many) in the states whose verdict the protocol says; None when none was either."""
    granted = sum(outcomes.get(state, 0) for state in protocol.verdict_states("licence_granted"))
    refused = sum(outcomes.get(state, 0) for state in protocol.verdict_states("licence_refused"))
    decided = granted + refused
    return None if decided == 0 else round(granted / decided, 4)


def age_band(age: int) -> str:
    for label, upper in AGE_BANDS:
        if upper is None or age <= upper:
            return label
    return AGE_BANDS[-1][0]
