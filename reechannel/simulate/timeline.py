"""The demo history's plan on the public timeline: every case's steps, planned without I/O.

The record (DOMAIN.md, the seeds; docs/metrics.md sets each figure beside the plan's):
controls from 4 April 2025, their expansion of 9 October 2025, the special channel from
early November 2025 (Šefčovič, 5 November: about 2,000 applications, just over half
approved), about 70 % approved by the end of December 2025, eight priority lists by the
end of October 2025, one week at the fastest and typically one to one and a half months,
refusals rare. `plan_history` draws every case's route and the lists from a seeded random
generator; `reechannel.simulate.history.History` plays the plan through Casework, and
`record_figures` reads the same figures off a plan as the Commission reports them.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from reechannel.simulate.world import DECLINE_REASONS, FORMS, DemoCompany, make_application
from services.review.domain.calendar import add_working_days, is_working_day
from services.review.domain.calendar import working_days_between as wd_between
from services.review.domain.deadlines import information_request_schedule
from services.review.domain.priority import RuleSet, score
from services.review.domain.protocol import CalendarSide, Protocol

HISTORY_PREFIX = "HIS"
CONTROLS = date(2025, 4, 4)
EXPANSION = date(2025, 10, 9)
SPECIAL_CHANNEL = date(2025, 11, 5)
YEAR_END = date(2025, 12, 31)

# Applications filed per EU working day at the record's scale (about 2,000 by 5 November:
# a steady flow under the April controls, a rush after the October expansion, then a
# falling flow once general and year-long licences cover more shipments per application).
FILING_RATES: tuple[tuple[date, float], ...] = (
    (CONTROLS, 11.0),
    (EXPANSION, 31.0),
    (SPECIAL_CHANNEL, 14.0),
    (date(2026, 1, 1), 3.0),
)
# The eight lists the Commission had sent by the end of October 2025 (each moved to the
# next EU working day if it falls on a holiday); later lists follow LIST_INTERVALS.
RECORD_LISTS: tuple[date, ...] = (
    date(2025, 5, 13),
    date(2025, 6, 10),
    date(2025, 7, 8),
    date(2025, 8, 5),
    date(2025, 9, 2),
    date(2025, 9, 23),
    date(2025, 10, 14),
    date(2025, 10, 28),
)
# After the special channel opened: a list every three weeks until the year's end, then
# every four.
LIST_INTERVALS: tuple[tuple[date, int], ...] = ((SPECIAL_CHANNEL, 21), (date(2026, 1, 1), 28))
LIST_HOUR = 10
# Route shares (of all applications).
WITHDRAW = 0.035
EU_REQUEST = 0.09
UNANSWERED = 0.15  # of requests for information: the case lapses
DECLINE = 0.025  # outside the channel's scope (defence cases apart)
DEFENCE_DECLINED = 0.6  # the other defence cases go to China and are refused
CN_REQUEST = 0.05
LISTED_ENTITY = 0.012
OTHER_REFUSAL = 0.008
FAST_TRACK = 0.75  # of P1 cases
# MOFCOM's review after acceptance, in CN working days: per form (world.FORMS' cn_days)
# times these factors. The special channel shortened the wait for a list (more lists, the
# fast track), not MOFCOM's own review.
REVIEW_FACTOR = 1.15
REVIEW_SPREAD = 0.3
P1_FACTOR = 0.6
SLOW_TAIL = 0.02  # cases stuck well past the statutory 45 working days


@dataclass(order=True)
class Step:
    """One planned step: its moment, and what to do (History's `_<kind>` method)."""

    at: datetime
    seq: int
    kind: str = field(compare=False)
    case_ref: str = field(compare=False, default="")
    data: dict[str, Any] = field(compare=False, default_factory=dict)


@dataclass
class CasePlan:
    """One case's planned route and where the plan says it ends."""

    ref: str
    company: DemoCompany
    application: dict[str, Any]
    submitted: datetime
    tier: str
    outcome: str | None = None  # None: still open at the end of the history
    decided: datetime | None = None
    asked: bool = False
    accepted: datetime | None = None  # MOFCOM's acceptance: the statutory clock starts


@dataclass
class HistoryPlan:
    cases: dict[str, CasePlan]
    lists: list[datetime]
    steps: list[Step]
    start: datetime
    end: datetime


def filing_rate(day: date) -> float:
    rate = 0.0
    for since, per_day in FILING_RATES:
        if day >= since:
            rate = per_day
    return rate


def expected_filings(end: date) -> float:
    """Applications the record's rates file from the controls up to `end` (scale 1)."""
    day, total = CONTROLS, 0.0
    while day <= end:
        if is_working_day("EU", day):
            total += filing_rate(day)
        day += timedelta(days=1)
    return total


def list_days(end: date) -> list[date]:
    """The priority lists' days up to `end`: the record's eight, then the channel's rhythm."""
    days = [_working_on_or_after("EU", d) for d in RECORD_LISTS]
    day = SPECIAL_CHANNEL + timedelta(days=6)  # the first list of the special channel
    while day <= end:
        days.append(_working_on_or_after("EU", day))
        interval = next(n for since, n in reversed(LIST_INTERVALS) if day >= since)
        day += timedelta(days=interval)
    return sorted(d for d in days if d <= end)


def ends(action: str) -> str:
    """The state an ending action leaves a case in, as protocol.yaml says."""
    return Protocol.load().target_of(action)


def _working_on_or_after(side: CalendarSide, day: date) -> date:
    return day if is_working_day(side, day) else add_working_days(side, day, 1)


class Planner:
    """Draws a plan; `count` scales the record's filing rates to that many applications."""

    def __init__(
        self,
        rng: random.Random,
        companies: Sequence[DemoCompany],
        end: datetime,
        numbers_used: Mapping[int, int] | None = None,
        rules: RuleSet | None = None,
    ) -> None:
        self.rng, self.companies, self.end = rng, list(companies), end
        self.year_seq = dict(numbers_used or {})
        self.rules = rules or RuleSet.default()
        self.steps: list[Step] = []
        self.seq = 0
        self.lapse_planned = False
        self.lists = [datetime.combine(d, time(LIST_HOUR, 0), UTC) for d in list_days(end.date())]

    # moments

    def at(self, moment: datetime, kind: str, ref: str = "", **data: Any) -> bool:
        """Plan a step; one at or after the history's end is not planned (False)."""
        if moment >= self.end:
            return False
        self.seq += 1
        self.steps.append(Step(moment, self.seq, kind, ref, data))
        return True

    def later(self, side: CalendarSide, after: datetime, working_days: int) -> datetime:
        """A moment in office hours `working_days` of `side` after `after`, and always after
        it: a case's history runs forward (a same-day step comes minutes to hours later)."""
        day = add_working_days(side, after.date(), max(working_days, 0))
        day = _working_on_or_after(side, day)
        moment = datetime.combine(day, time(self.rng.randrange(8, 18), self.rng.randrange(60)), UTC)
        if moment <= after:
            moment = after + timedelta(minutes=self.rng.randrange(5, 120))
        return moment

    # the plan

    def plan(self, count: int) -> HistoryPlan:
        cases: dict[str, CasePlan] = {}
        scale = count / max(expected_filings(self.end.date()), 1.0)
        day = CONTROLS
        while day < self.end.date():
            if is_working_day("EU", day):
                for _ in range(self._poisson(filing_rate(day) * scale)):
                    plan = self._file(day)
                    if plan is not None:
                        cases[plan.ref] = plan
            day += timedelta(days=1)
        for moment in self.lists:
            self.at(moment, "list")
        day = CONTROLS
        while day < self.end.date():
            self.at(datetime.combine(day, time(23, 0), UTC), "tick")
            day += timedelta(days=1)
        # A last check at the end, so the service's own ticker finds the history up to date.
        self.at(self.end - timedelta(seconds=1), "tick")
        start = datetime.combine(CONTROLS, time(0, 0), UTC)
        return HistoryPlan(cases, self.lists, sorted(self.steps), start, self.end)

    def _poisson(self, mean: float) -> int:
        # Knuth's method is fine for the few dozen a day.
        limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def _file(self, day: date) -> CasePlan | None:
        submitted = datetime.combine(
            day, time(self.rng.randrange(8, 18), self.rng.randrange(60)), UTC
        )
        if submitted >= self.end:
            return None
        self.year_seq[day.year] = self.year_seq.get(day.year, 0) + 1
        ref = f"{HISTORY_PREFIX}-{day.year}-{self.year_seq[day.year]:06d}"
        company = self.rng.choice(self.companies)
        application = make_application(self.rng, company, day)
        tier = score(application, self.rules, day).tier
        plan = CasePlan(ref, company, application, submitted, tier)
        self.at(submitted, "open", ref)
        self._route(plan)
        return plan

    def _end(self, plan: CasePlan, outcome: str, moment: datetime) -> None:
        if moment < self.end:
            plan.outcome, plan.decided = outcome, moment

    def _route(self, plan: CasePlan) -> None:
        """The case's whole route from its opening; a withdrawal cuts it short."""
        withdraw_at = None
        if self.rng.random() < WITHDRAW:
            withdraw_at = self.later("EU", plan.submitted, self.rng.randrange(2, 30))
        self._eu_side(plan)
        if withdraw_at is None or withdraw_at >= self.end:
            return
        if plan.decided is not None and plan.decided <= withdraw_at:
            return
        self.steps = [s for s in self.steps if s.case_ref != plan.ref or s.at < withdraw_at]
        self.at(withdraw_at, "withdraw", plan.ref)
        plan.outcome, plan.decided = ends("withdraw"), withdraw_at

    def _eu_side(self, plan: CasePlan) -> None:
        """EU screening (with its request for information), then China."""
        ref, rng = plan.ref, self.rng
        defence = plan.application["end_use"]["category"] == "defence"
        screened = self.later("EU", plan.submitted, rng.choice([0, 1, 1, 2, 2, 3, 4]))
        if plan.tier == "P1":
            screened = self.later("EU", plan.submitted, rng.choice([0, 0, 1, 1, 2]))
        if rng.random() < EU_REQUEST:
            plan.asked = True
            asked = self.later("EU", plan.submitted, 1)
            self.at(asked, "ask", ref, side="EU")
            lapse = information_request_schedule(asked.date()).lapse
            lapsed = datetime.combine(lapse + timedelta(days=1), time(23, 0), UTC)
            # Every history long enough shows a lapse, however small: the first request
            # whose lapse comes before the end goes unanswered.
            if rng.random() < UNANSWERED or (not self.lapse_planned and lapsed < self.end):
                self.lapse_planned = self.lapse_planned or lapsed < self.end
                self._end(plan, ends("lapse"), lapsed)
                return
            answered = self.later("EU", asked, rng.randrange(2, 12))
            self.at(answered, "answer", ref, side="EU")
            screened = self.later("EU", answered, rng.choice([1, 1, 2, 3]))
        if (defence and rng.random() < DEFENCE_DECLINED) or (
            not defence and rng.random() < DECLINE
        ):
            reason = "military_end_use" if defence else rng.choice(DECLINE_REASONS)
            if self.at(screened, "decline", ref, reason=reason):
                self._end(plan, ends("decline"), screened)
            return
        if not self.at(screened, "admit", ref):
            return
        sent = self._sent(plan, screened)
        if sent is not None:
            self._cn_side(plan, sent, defence)

    def _sent(self, plan: CasePlan, admitted: datetime) -> datetime | None:
        """When the case reaches China: fast-tracked (P1) or on the next list."""
        if plan.tier == "P1" and self.rng.random() < FAST_TRACK:
            moment = self.later("EU", admitted, self.rng.choice([0, 1, 1, 2]))
            return moment if self.at(moment, "fast_track", plan.ref) else None
        return next((m for m in self.lists if m > admitted), None)

    def _cn_side(self, plan: CasePlan, sent: datetime, defence: bool) -> None:
        ref, rng = plan.ref, self.rng
        accepted = self.later("CN", sent, rng.choice([1, 1, 2, 2, 3, 4, 6]))
        if not self.at(accepted, "acknowledge", ref):
            return
        plan.accepted = accepted
        start = accepted
        if rng.random() < CN_REQUEST:
            plan.asked = True
            asked = self.later("CN", accepted, rng.randrange(2, 8))
            answered = self.later("EU", asked, rng.randrange(2, 10))
            self.at(asked, "ask", ref, side="CN")
            self.at(answered, "answer", ref, side="CN")
            start = answered
        days = self._review_days(plan)
        decided = self.later("CN", start, days)
        r = rng.random()
        if defence:
            kind, reason = "refuse", "military_end_use"
        elif r < LISTED_ENTITY:
            kind, reason = "refuse", "listed_entity"
        elif r < LISTED_ENTITY + OTHER_REFUSAL:
            kind, reason = "refuse", rng.choice(("end_use_not_credible", "diversion_risk"))
        else:
            kind, reason = "approve", ""
        if self.at(decided, kind, ref, reason=reason):
            self._end(plan, ends(kind), decided)

    def _review_days(self, plan: CasePlan) -> int:
        mean = max(FORMS[g["form"]]["cn_days"] for g in plan.application["goods"])
        factor = REVIEW_FACTOR
        if plan.tier == "P1":
            factor *= P1_FACTOR
        if self.rng.random() < SLOW_TAIL:
            return self.rng.randrange(46, 70)
        return max(2, round(self.rng.gauss(mean * factor, mean * factor * REVIEW_SPREAD)))


def plan_history(
    count: int,
    companies: Sequence[DemoCompany],
    rng: random.Random,
    end: datetime,
    numbers_used: Mapping[int, int] | None = None,
) -> HistoryPlan:
    """About `count` applications filed from 4 April 2025 to `end`, at the record's rates."""
    return Planner(rng, companies, end, numbers_used).plan(count)


# --- the record's figures, read off a plan ----------------------------------------------------


def record_figures(plan: HistoryPlan) -> dict[str, Any]:
    """What the Commission reports, as the plan produces it (docs/metrics.md compares)."""
    cases = list(plan.cases.values())
    approved, refused = ends("approve"), ends("refuse")

    def filed_by(day: date) -> list[CasePlan]:
        return [c for c in cases if c.submitted.date() <= day]

    def approved_share(day: date) -> float:
        filed = filed_by(day)
        done = [c for c in filed if c.outcome == approved and c.decided and c.decided.date() <= day]
        return len(done) / max(len(filed), 1)

    approvals = [c for c in cases if c.outcome == approved and c.decided is not None]
    times = sorted(
        wd_between("EU", c.submitted.date(), c.decided.date())
        for c in approvals
        if c.decided is not None
    )
    decided = [c for c in cases if c.outcome is not None]
    outcomes = {o: sum(c.outcome == o for c in cases) for o in map(ends, ENDING_ACTIONS)}
    return {
        "filed_by_5_nov_2025": len(filed_by(SPECIAL_CHANNEL)),
        "approved_share_5_nov_2025": round(approved_share(SPECIAL_CHANNEL), 3),
        "approved_share_end_2025": round(approved_share(YEAR_END), 3),
        "lists_by_end_oct_2025": sum(m.date() <= date(2025, 10, 31) for m in plan.lists),
        "lists_on_working_days": all(is_working_day("EU", m.date()) for m in plan.lists),
        "fastest_approval_days": times[0] if times else None,
        "median_approval_days": times[len(times) // 2] if times else None,
        "decided_past_statutory": sum(
            wd_between("CN", c.accepted.date(), c.decided.date()) > 45
            for c in cases
            if c.outcome in (approved, refused) and c.accepted and c.decided
        ),
        "refused_share_of_decided": round(outcomes[refused] / max(len(decided), 1), 3),
        "outcomes": outcomes,
        "information_requests": sum(c.asked for c in cases),
        "filed": len(cases),
    }


# The actions that end a case in the history, in the order the figures list their states.
ENDING_ACTIONS = ("approve", "refuse", "decline", "withdraw", "lapse")
