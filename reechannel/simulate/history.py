"""The back-dated history: the planned cases played out through review's Casework.

Demo only (the command refuses it in production): one transaction per step of the plan
(timeline.py draws it on the public timeline), Casework running on the simulator's clock
(StepClock) set to the step's moment, so records, audit entries and events carry the
simulated times, in the order they happened.
"""

from __future__ import annotations

import heapq
import random
import uuid
from datetime import datetime
from typing import Any

from reechannel.simulate.clock import StepClock
from reechannel.simulate.progress import Progress, say
from reechannel.simulate.timeline import HISTORY_PREFIX, HistoryPlan, Step, plan_history
from reechannel.simulate.world import World
from shared.config import CommonSettings
from shared.directory import Directory


class History:
    """Plays a planned history through Casework, on a clock set to each step."""

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
        self.cases: dict[str, dict[str, Any]] = {}  # reference -> company, application, id
        self.skipped = 0
        self.failures: list[str] = []
        self.history_plan: HistoryPlan | None = None

    # planning

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

    def plan(self, count: int) -> HistoryPlan:
        """About `count` applications on the public timeline, from 4 April 2025 to now."""
        plan = plan_history(count, self.world.companies, self.rng, self.now, self._numbers_used())
        self.history_plan = plan
        self.cases = {
            ref: {"company": case.company, "application": case.application}
            for ref, case in plan.cases.items()
        }
        self.queue = list(plan.steps)
        heapq.heapify(self.queue)
        return plan

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
        data = ApplicationSubmitted.model_validate(
            {
                "application_id": str(uuid.uuid4()),
                "reference": step.case_ref,
                "company_id": plan["company"].id,
                "submitted_at": step.at,
                "status": "submitted",
                "application": plan["application"],
            }
        )
        with self._session() as session:
            case = self.casework.open_case(session, data)
            assert case is not None
            plan["id"] = case.id

    def _ask(self, step: Step) -> None:
        self._act(
            step.case_ref,
            step.data["side"],
            "officer",
            "request_information",
            question="Please provide the end-user statement and the contract covering these goods.",
        )

    def _answer(self, step: Step) -> None:
        from services.review.store import open_request
        from shared.events import InformationAnswered

        with self._session() as session:
            case = self._case(session, step.case_ref)
            request = open_request(session, case.id)
            if request is None:
                self.skipped += 1
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

    def _decline(self, step: Step) -> None:
        self._act(step.case_ref, "EU", "officer", "decline", reason=step.data["reason"])

    def _withdraw(self, step: Step) -> None:
        from shared.events import ApplicationWithdrawn

        with self._session() as session:
            case = self._case(session, step.case_ref)
            if self.casework.protocol.is_terminal(case.state):
                self.skipped += 1
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
        self._act(step.case_ref, "EU", "officer", "admit")

    def _fast_track(self, step: Step) -> None:
        self._act(
            step.case_ref,
            "EU",
            "supervisor",
            "fast_track",
            reason="Critical value chain; production stops within weeks.",
        )

    def _list(self, step: Step) -> None:
        from sqlmodel import col, select

        from services.review.store import Case

        listable = self.casework.protocol.actions["issue_priority_list"].from_states
        with self._session() as session:
            queued = set(session.exec(select(Case.id).where(col(Case.state).in_(listable))).all())
            ids = [plan["id"] for plan in self.cases.values() if plan.get("id") in queued]
            if ids:
                self.casework.issue_priority_list(session, self._who("EU", "supervisor"), ids, None)

    def _acknowledge(self, step: Step) -> None:
        self._act(
            step.case_ref, "CN", "officer", "acknowledge", accepted_on=step.at.date().isoformat()
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
        self._act(step.case_ref, "CN", "officer", "refuse", reason=step.data["reason"])

    def _tick(self, step: Step) -> None:
        with self._session() as session:
            self.casework.check_deadlines(session, step.at.date())
