"""Due dates, breaches and the expected decision date, computed from the protocol's deadlines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from services.review.domain.calendar import add_working_days, working_days_between
from services.review.domain.protocol import CalendarSide, Protocol

__all__ = [
    "Breach",
    "InformationRequestSchedule",
    "breach",
    "due_date",
    "expected_decision_date",
    "information_request_schedule",
]


@dataclass(frozen=True)
class InformationRequestSchedule:
    """When an answer is due, when to remind the applicant (None: no room), when it lapses."""

    due: date
    reminder: date | None
    lapse: date


@dataclass(frozen=True)
class Breach:
    """A stage ran past its limit; `action` is what the protocol does about it (or None)."""

    state: str
    limit: str
    due: date
    action: str | None


def _calendar(protocol: Protocol, state: str) -> CalendarSide:
    side = protocol.calendar_side(state)
    if side is None:
        raise ValueError(f"no clock runs in state {state!r}")
    return side


def due_date(
    state: str,
    started_on: date,
    tier: str | None = None,
    *,
    limit: str = "target",
    paused_working_days: int = 0,
    protocol: Protocol | None = None,
) -> date:
    """The day a stage's limit falls due, on the calendar of the side holding the case.

    `started_on` is the day the stage's clock started (where the protocol says `starts_on:
    acknowledgement`: MOFCOM's acceptance date); the pause while the applicant held the
    case pushes the date out day for day.
    """
    protocol = protocol or Protocol.load()
    try:
        deadline = protocol.deadlines[state]
    except KeyError:
        raise ValueError(f"no deadline for state {state!r}") from None
    days = deadline.limit(limit, tier) + paused_working_days
    return add_working_days(_calendar(protocol, state), started_on, days)


def information_request_schedule(
    requested_on: date,
    due_in_working_days: int | None = None,
    *,
    protocol: Protocol | None = None,
) -> InformationRequestSchedule:
    """Due, reminder and lapse dates of a request for information.

    A shorter due period than the protocol's reminder day moves the reminder to the day
    before the due date, so a reminder always comes before the answer is due.
    """
    protocol = protocol or Protocol.load()
    # The applicant's answer period is the deadline of the state a request leads to.
    waiting = protocol.target_of("request_information")
    deadline = protocol.deadlines[waiting]
    days = due_in_working_days or deadline.limit("target", None)
    reminder_days = min(deadline.limit("reminder", None), days - 1)
    lapse_days = max(deadline.limit("lapse", None), days)
    side = _calendar(protocol, waiting)
    return InformationRequestSchedule(
        due=add_working_days(side, requested_on, days),
        reminder=add_working_days(side, requested_on, reminder_days)
        if reminder_days >= 1
        else None,
        lapse=add_working_days(side, requested_on, lapse_days),
    )


def breach(
    state: str,
    tier: str | None,
    started_on: date | None,
    today: date,
    *,
    paused_working_days: int = 0,
    protocol: Protocol | None = None,
) -> Breach | None:
    """The breach of the stage's breach limit as of `today`, if any.

    `started_on` None means the stage's clock has not started (before the acknowledgement,
    where the stage's clock starts on it).
    """
    protocol = protocol or Protocol.load()
    deadline = protocol.deadlines.get(state)
    if deadline is None or started_on is None:
        return None
    due = due_date(
        state,
        started_on,
        tier,
        limit=deadline.breach_limit,
        paused_working_days=paused_working_days,
        protocol=protocol,
    )
    if today <= due:
        return None
    return Breach(state, deadline.breach_limit, due, deadline.on_breach)


def expected_decision_date(
    state: str,
    tier: str | None,
    stage_started_on: date,
    today: date,
    acknowledged_on: date | None = None,
    *,
    paused_working_days: int = 0,
    previous_state: str | None = None,
    answer_due: date | None = None,
    protocol: Protocol | None = None,
) -> date | None:
    """When a decision can be expected if every stage still ahead meets its target.

    The current stage ends on its due date (today at the earliest, when overdue); each later
    stage of the protocol's decision path adds its target on its own calendar. Before
    MOFCOM acknowledges, its clock is assumed to start today. In a paused state pass the
    state the case came from, that stage's start and pause so far, and the answer's due date:
    the answer is assumed to come on that date. Terminal states return None.
    """
    protocol = protocol or Protocol.load()
    if protocol.is_terminal(state):
        return None
    if protocol.clock(state) == "paused":
        if previous_state is None:
            raise ValueError(f"{state} needs previous_state to estimate a decision")
        resume = max(answer_due or today, today)
        extra_pause = working_days_between(_calendar(protocol, previous_state), today, resume)
        return expected_decision_date(
            previous_state,
            tier,
            stage_started_on,
            resume,
            acknowledged_on,
            paused_working_days=paused_working_days + extra_pause,
            protocol=protocol,
        )

    path = protocol.decision_path
    if state not in protocol.deadlines:
        # Not yet opened: the whole path is ahead, starting today.
        cursor, ahead = today, path
    else:
        start = stage_started_on
        if protocol.clock_starts_on(state) == "acknowledgement":
            start = acknowledged_on or today
        cursor = max(
            due_date(
                state, start, tier, paused_working_days=paused_working_days, protocol=protocol
            ),
            today,
        )
        ahead = path[path.index(state) + 1 :] if state in path else ()
    for stage in ahead:
        cursor = add_working_days(
            _calendar(protocol, stage), cursor, protocol.deadlines[stage].limit("target", tier)
        )
    return cursor
