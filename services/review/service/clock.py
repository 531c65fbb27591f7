"""Where the service layer's "now" comes from: the system clock, or one a caller gives.

Casework reads every time and date it stores or compares through its clock, so the
simulator can play a case out on past days by passing its own clock (no patching of the
process's time at run time).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock", "today_on"]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    """The machine's time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


SYSTEM_CLOCK = SystemClock()


def today_on(clock: Clock) -> date:
    """The service's today: the UTC date of the clock's now."""
    return clock.now().astimezone(UTC).date()
