"""The simulator's clock: the moment of the step being played, handed to Casework."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["StepClock"]


class StepClock:
    """Stands still at the moment it is set to (each step of the history happens at one
    instant), so Casework stamps a back-dated step's records and audit entries with it."""

    def __init__(self, moment: datetime) -> None:
        self.set(moment)

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("the simulated moment must be timezone-aware")
        self.moment = moment.astimezone(UTC)

    def now(self) -> datetime:
        return self.moment
