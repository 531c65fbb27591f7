"""Casework reads its time from the clock it is given; the simulator's clock stands still."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from reechannel.simulate.clock import StepClock
from services.review.service import Casework
from services.review.service.clock import SYSTEM_CLOCK, today_on


class _NoDirectory:
    """Casework's clock questions never reach the directory."""


def test_casework_answers_now_and_today_from_its_clock() -> None:
    clock = StepClock(datetime(2025, 3, 4, 23, 30, tzinfo=timezone(timedelta(hours=-2))))
    casework = Casework(_NoDirectory(), clock=clock, audit_key=b"k")  # type: ignore[arg-type]
    # 23:30 at UTC-2 is already the 5th in UTC: the service's today is the UTC date.
    assert casework.today() == date(2025, 3, 5)
    assert casework.now() == datetime(2025, 3, 5, 1, 30, tzinfo=UTC)
    clock.set(datetime(2024, 1, 2, 9, 0, tzinfo=UTC))
    assert casework.today() == date(2024, 1, 2)


def test_by_default_casework_runs_on_the_system_clock() -> None:
    casework = Casework(_NoDirectory(), audit_key=b"k")  # type: ignore[arg-type]
    before = datetime.now(UTC)
    assert before - timedelta(seconds=5) <= casework.now() <= datetime.now(UTC)
    assert casework.clock is SYSTEM_CLOCK
    assert today_on(SYSTEM_CLOCK) == datetime.now(UTC).date()


def test_the_step_clock_refuses_a_naive_moment() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        StepClock(datetime(2025, 3, 4, 12, 0))
