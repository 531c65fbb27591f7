"""The back-dated history: cases played out over past months through review's Casework.

Demo only (the command refuses it in production): one transaction per step, Casework
running on the simulator's clock (StepClock) set to the step's moment, so records, audit
entries and events carry the simulated times.
"""

from __future__ import annotations

import heapq
import itertools
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from reechannel.simulate.clock import StepClock
from reechannel.simulate.progress import Progress, say
from reechannel.simulate.world import (
    DECLINE_REASONS,
    FORMS,
    REFUSE_REASONS,
    DemoCompany,
    World,
    approves,
    make_application,
)
from shared.config import CommonSettings
from shared.directory import Directory

HISTORY_PREFIX = "HIS"
CALENDAR: Literal["EU"] = "EU"


@dataclass(order=True)
class Step:
    at: datetime
    seq: int
    kind: str = field(compare=False)
    case_ref: str = field(compare=False, default="")
    data: dict[str, Any] = field(compare=False, default_factory=dict)


class History:
    """Plays cases out over past months through Casework, on a clock set to each step."""

    def __init__(
        self,
        settings: CommonSettings,
        directory: Directory,
        world: World,
        rng: random.Random,
        now: datetime,
    ) -> None:
        from services.review.app import MIGRATIONS
        from services.review.service import Casework
        from shared.db import make_engine, migrate

        self.engine = make_engine(settings, "review", pool_size=2)
        migrate(self.engine, MIGRATIONS, settings.schema_for("review"))
        self.clock = StepClock(now)
        self.casework = Casework(directory, clock=self.clock)
        self.world, self.rng, self.now = world, rng, now
        self.queue: list[Step] = []
        self.counter = itertools.count()
        self.cases: dict[str, dict[str, Any]] = {}  # reference -> id, application, plan
        self.skipped = 0
        self.failures: list[str] = []
        self.lapse_planned = False

    # scheduling

    def at(self, moment: datetime, kind: str, ref: str = "", **data: Any) -> None:
        if moment < self.now:
            heapq.heappush(self.queue, Step(moment, next(self.counter), kind, ref, data))

    def later(self, moment: datetime, working_days: int, hour: int | None = None) -> datetime:
        from services.review.domain.calendar import add_working_days

        day = add_working_days(CALENDAR, moment.date(), max(working_days, 0))
        hour = hour if hour is not None else self.rng.randrange(8, 18)
        return datetime(day.year, day.month, day.day, hour, self.rng.randrange(60), tzinfo=UTC)

    def _numbers_used(self) -> dict[int, int]:
        """The highest HIS- number per year already in the database, so reruns never clash."""
        from sqlmodel import Session, col, select

        from services.review.store import Case

        used: dict[int, int] = {}
        with Session(self.engine) as session:
            for ref in session.exec(
                select(Case.reference).where(col(Case.reference).startswith(HISTORY_PREFIX + "-"))
            ):
                _, year, number = ref.split("-")
                used[int(year)] = max(used.get(int(year), 0), int(number))
        return used

    def plan(self, count: int, start: datetime, lists: int) -> None:
        span = (self.now - start).total_seconds()
        year_seq = self._numbers_used()
        for _ in range(count):
            submitted = start + timedelta(seconds=span * (self.rng.random() ** 0.8))
            submitted = self.later(submitted - timedelta(days=1), 1)
            if submitted >= self.now:
                continue
            year_seq[submitted.year] = year_seq.get(submitted.year, 0) + 1
            ref = f"{HISTORY_PREFIX}-{submitted.year}-{year_seq[submitted.year]:06d}"
            company = self.rng.choice(self.world.companies)
            application = make_application(self.rng, company, submitted.date())
            self.cases[ref] = {"company": company, "application": application}
            self.at(submitted, "open", ref)
        for k in range(1, lists + 1):
            moment = self.later(start + timedelta(seconds=span * k / (lists + 0.6)), 0, hour=10)
            self.at(moment, "list")
        day = start.date()
        while day < self.now.date():
            self.at(datetime(day.year, day.month, day.day, 23, 0, tzinfo=UTC), "tick")
            day += timedelta(days=1)
        # A last check today, so the service's own ticker finds the history up to date.
        self.at(self.now - timedelta(seconds=1), "tick")

    # running

    def run(self) -> None:
        progress = Progress("history (back-dated)", len(self.queue))
        while self.queue:
            step = heapq.heappop(self.queue)
            self.clock.set(step.at)
            try:
                getattr(self, "_" + step.kind)(step)
            except Exception as exc:  # a step the protocol refuses now is skipped
                self.skipped += 1
                self.failures.append(f"{step.kind} on {step.case_ref}: {exc}")
            progress.total = max(progress.total, progress.done + len(self.queue) + 1)
            progress.step()
        progress.close()
        self.engine.dispose()
        if self.skipped:
            say(f"{self.skipped} planned steps no longer applied (the case had moved on)")
        for failure in self.failures[:5]:
            say(f"step failed: {failure}")

    def _session(self) -> Any:
        from shared.db import session_scope

        return session_scope(self.engine)

    def _who(self, side: str, role: str) -> Any:
        from services.review.service import Who

        o = self.rng.choice(self.world.of(side, role))
        return Who(o.id, side, role, o.name)

    def _case(self, session: Any, ref: str) -> Any:
        from services.review.store import Case

        return session.get(Case, self.cases[ref]["id"])

    def _act(self, ref: str, side: str, role: str, action: str, **params: Any) -> str | None:
        """Take the action if the case is in a state that allows it; return the new state."""
        with self._session() as session:
            case = self._case(session, ref)
            who = self._who(side, role)
            if action not in self.casework.allowed_actions(case, who):
                self.skipped += 1
                return None
            meeting = self.casework.protocol.actions[action].params.get("meeting")
            if meeting is not None and case.state in (meeting.required_in or ()):
                params = {**params, "meeting": self._meeting(self.clock.now())}
            self.casework.act(session, case, who, action, params, case.version)
            if case.pending_proposal_id is not None:
                # Four eyes: a supervisor of the side, not the proposer, countersigns.
                self.casework.countersign(
                    session, case, self._countersigner(side, who.id), case.pending_proposal_id
                )
            return str(case.state)

    def _countersigner(self, side: str, proposer_id: str) -> Any:
        from services.review.service import Who

        others = [o for o in self.world.of(side, "supervisor") if o.id != proposer_id]
        o = self.rng.choice(others)
        return Who(o.id, side, "supervisor", o.name)

    def _meeting(self, now: datetime) -> dict[str, Any]:
        """The joint meeting's record a case carries out of joint review."""
        eu, cn = self._who("EU", "supervisor"), self._who("CN", "supervisor")
        return {
            "held_on": now.date().isoformat(),
            "participants": [eu.id, cn.id],
            "outcome": "Discussed at the joint meeting; MOFCOM to decide on the file.",
        }

    def _open(self, step: Step) -> None:
        from shared.events import ApplicationSubmitted

        plan = self.cases[step.case_ref]
        company: DemoCompany = plan["company"]
        data = ApplicationSubmitted.model_validate(
            {
                "application_id": str(uuid.uuid4()),
                "reference": step.case_ref,
                "company_id": company.id,
                "submitted_at": step.at,
                "status": "submitted",
                "application": plan["application"],
            }
        )
        with self._session() as session:
            case = self.casework.open_case(session, data)
            assert case is not None
            plan["id"], plan["tier"] = case.id, case.tier
        r = self.rng.random()
        screening = self.later(step.at, self.rng.choice([0, 1, 1, 2, 2, 3, 4, 6]))
        if plan["tier"] == "P1":
            screening = self.later(step.at, self.rng.choice([0, 0, 1, 1, 2]))
        plan["will_withdraw"] = r < 0.03
        if r < 0.03:
            self.at(self.later(step.at, self.rng.randrange(1, 15)), "withdraw", step.case_ref)
        if r < 0.14:
            self.at(self.later(step.at, 1), "ask", step.case_ref, side="EU")
        elif r < 0.22:
            reason = self.rng.choice(DECLINE_REASONS)
            if plan["application"]["end_use"]["category"] == "defence":
                reason = "military_end_use"
            self.at(screening, "decline", step.case_ref, reason=reason)
        else:
            self.at(screening, "admit", step.case_ref)

    def _ask(self, step: Step) -> None:
        side = step.data["side"]
        state = self._act(
            step.case_ref,
            side,
            "officer",
            "request_information",
            question="Please provide the end-user statement and the contract covering these goods.",
        )
        if state is None:
            return
        answered = self.rng.random() < 0.85
        if not self.lapse_planned and self._lapses_before_now(step):
            # Every history long enough shows a lapse, whatever today's date: the first
            # request with room for its lapse before now goes unanswered.
            answered = False
        if answered:
            answer = self.later(step.at, self.rng.randrange(2, 12))
            self.at(answer, "answer", step.case_ref, side=side)
        else:
            # Nobody answers and the deadline ticker lapses the case.
            self.lapse_planned = self.lapse_planned or self._lapses_before_now(step)

    def _lapses_before_now(self, step: Step) -> bool:
        """Whether an unanswered request asked at this step lapses before now."""
        from services.review.domain.calendar import add_working_days

        if self.cases[step.case_ref].get("will_withdraw"):
            return False
        # The protocol's 20 working days, and some room for the ticker and holidays.
        return add_working_days(CALENDAR, step.at.date(), 25) < self.now.date()

    def _answer(self, step: Step) -> None:
        from services.review.store import open_request
        from shared.events import InformationAnswered

        plan = self.cases[step.case_ref]
        with self._session() as session:
            case = self._case(session, step.case_ref)
            request = open_request(session, case.id)
            if request is None:
                return
            self.casework.record_answer(
                session,
                InformationAnswered(
                    application_id=case.application_id,
                    reference=case.reference,
                    company_id=case.company_id,
                    request_id=request.id,
                    answer="Statement and contract uploaded.",
                    answered_at=step.at,
                ),
            )
        after = self.later(step.at, self.rng.choice([1, 1, 2, 3]))
        if step.data["side"] == "EU":
            self.at(after, "admit", step.case_ref)
        else:
            self._schedule_decision(step.case_ref, after, plan)

    def _decline(self, step: Step) -> None:
        self._act(step.case_ref, "EU", "officer", "decline", reason=step.data["reason"])

    def _withdraw(self, step: Step) -> None:
        from shared.events import ApplicationWithdrawn

        with self._session() as session:
            case = self._case(session, step.case_ref)
            if self.casework.protocol.is_terminal(case.state):
                return
            self.casework.record_withdrawal(
                session,
                ApplicationWithdrawn(
                    application_id=case.application_id,
                    reference=case.reference,
                    company_id=case.company_id,
                    withdrawn_at=step.at,
                    reason="Supply found elsewhere.",
                ),
            )

    def _admit(self, step: Step) -> None:
        if self._act(step.case_ref, "EU", "officer", "admit") is None:
            return
        plan = self.cases[step.case_ref]
        if plan["tier"] == "P1" and self.rng.random() < 0.75:
            self.at(self.later(step.at, self.rng.choice([0, 1, 1, 2])), "fast_track", step.case_ref)

    def _fast_track(self, step: Step) -> None:
        state = self._act(
            step.case_ref,
            "EU",
            "supervisor",
            "fast_track",
            reason="Critical value chain; production stops within weeks.",
        )
        if state == self.casework.protocol.target_of("fast_track"):
            self._schedule_cn(step.case_ref, step.at)

    def _list(self, step: Step) -> None:
        from sqlmodel import col, select

        from services.review.store import Case

        listable = self.casework.protocol.actions["issue_priority_list"].from_states
        with self._session() as session:
            queued = set(session.exec(select(Case.id).where(col(Case.state).in_(listable))).all())
            refs = [ref for ref, plan in self.cases.items() if plan.get("id") in queued]
            if not refs:
                return
            ids = [self.cases[ref]["id"] for ref in refs]
            self.casework.issue_priority_list(session, self._who("EU", "supervisor"), ids, None)
        for ref in refs:
            self._schedule_cn(ref, step.at)

    def _schedule_cn(self, ref: str, sent: datetime) -> None:
        self.at(self.later(sent, self.rng.choice([1, 2, 2, 3, 4, 6, 8])), "acknowledge", ref)

    def _acknowledge(self, step: Step) -> None:
        state = self._act(
            step.case_ref, "CN", "officer", "acknowledge", accepted_on=step.at.date().isoformat()
        )
        if state is None:
            return
        plan = self.cases[step.case_ref]
        if self.rng.random() < 0.06:
            self.at(self.later(step.at, self.rng.randrange(2, 8)), "ask", step.case_ref, side="CN")
            return
        if self.rng.random() < 0.04:
            self.at(self.later(step.at, self.rng.randrange(5, 12)), "escalate", step.case_ref)
        self._schedule_decision(step.case_ref, step.at, plan)

    def _schedule_decision(self, ref: str, start: datetime, plan: dict[str, Any]) -> None:
        application = plan["application"]
        mean = max(FORMS[g["form"]]["cn_days"] for g in application["goods"])
        if plan["tier"] == "P1":
            mean = int(mean * 0.6)
        days = max(2, int(self.rng.gauss(mean, mean * 0.35)))
        decision = "approve" if approves(self.rng, application) else "refuse"
        self.at(self.later(start, days), decision, ref)

    def _escalate(self, step: Step) -> None:
        self._act(
            step.case_ref,
            "EU",
            "supervisor",
            "escalate",
            reason="Production stop imminent; raised for the joint meeting.",
        )

    def _approve(self, step: Step) -> None:
        goods = self.cases[step.case_ref]["application"]["goods"]
        lines = [
            {
                "line": n,
                "approved_quantity_kg": g["quantity_kg"]
                if self.rng.random() < 0.8
                else round(g["quantity_kg"] * 0.6, 1),
            }
            for n, g in enumerate(goods, start=1)
        ]
        self._act(
            step.case_ref,
            "CN",
            "officer",
            "approve",
            licence={
                "type": self.cases[step.case_ref]["application"]["licence_type"],
                "number": f"MOFCOM-LIC-{step.case_ref}",
                "valid_from": step.at.date().isoformat(),
                "lines": lines,
            },
        )

    def _refuse(self, step: Step) -> None:
        application = self.cases[step.case_ref]["application"]
        reason = (
            "military_end_use"
            if application["end_use"]["category"] == "defence"
            else self.rng.choice(REFUSE_REASONS)
        )
        self._act(step.case_ref, "CN", "officer", "refuse", reason=reason)

    def _tick(self, step: Step) -> None:
        with self._session() as session:
            self.casework.check_deadlines(session, step.at.date())
