"""Working days per side: Belgian public holidays for EU, Chinese ones with make-up days for CN."""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays

from services.review.domain.protocol import CalendarSide

# The Commission sits in Brussels; MOFCOM follows the State Council's holiday schedule.
_COUNTRY = {"EU": "BE", "CN": "CN"}
_SATURDAY = 5


@lru_cache(maxsize=64)
def _holidays_for(country: str, year: int) -> holidays.HolidayBase:
    # expand=False keeps each cached object to its one year, so lookups never mutate it.
    return holidays.country_holidays(country, years=year, expand=False)


@lru_cache(maxsize=16384)
def _country_works(country: str, day: date) -> bool:
    # Deadlines walk the calendar day by day for every case opened or moved: remember the days.
    calendar = _holidays_for(country, day.year)
    if day in calendar:
        return False
    if day.weekday() < _SATURDAY:
        return True
    # China moves working days onto weekends around long holidays (调休); the library lists
    # them in weekend_workdays. Belgium has none, so the set is empty there.
    return day in calendar.weekend_workdays


def is_working_day(side: CalendarSide, day: date) -> bool:
    """Whether `side` works on `day`; "joint" needs both sides at work."""
    if side == "joint":
        return _country_works("BE", day) and _country_works("CN", day)
    try:
        return _country_works(_COUNTRY[side], day)
    except KeyError:
        raise ValueError(f"unknown calendar side {side!r}") from None


def add_working_days(side: CalendarSide, start: date, n: int) -> date:
    """The n-th working day after `start` (`start` itself never counts; n=0 gives `start`)."""
    if n < 0:
        raise ValueError("n must not be negative")
    day = start
    remaining = n
    while remaining:
        day += timedelta(days=1)
        if is_working_day(side, day):
            remaining -= 1
    return day


def working_days_between(side: CalendarSide, start: date, end: date) -> int:
    """Working days in (start, end]: the inverse of add_working_days; negative if end < start."""
    if end < start:
        return -working_days_between(side, end, start)
    return sum(
        1
        for offset in range(1, (end - start).days + 1)
        if is_working_day(side, start + timedelta(days=offset))
    )
