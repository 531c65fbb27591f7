"""The deadline ticker: lapses unanswered requests, reminds, records breaches, escalates.

What a breach does is the protocol's (`on_breach` of the stage's deadline); the ticker
only asks it.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from services.review.domain import deadlines
from services.review.projection import note_breach
from services.review.service.core import CaseworkCore
from services.review.service.who import SYSTEM, SYSTEM_WHO
from services.review.store import Breach, Case, InformationRequest
from shared.events import CaseDeadlineBreached, CaseInformationReminder, InformationRequestRef

__all__ = ["DeadlineTicker"]

# Cases whose open requests and breaches one query of the deadline ticker reads.
TICK_CHUNK = 1000
Breached = tuple[str, str, str, date]
# An information request's status once its lapse date passed (InformationRequest.status).
REQUEST_LAPSED = "lapsed"


class DeadlineTicker(CaseworkCore):
    def check_deadlines(self, session: Session, today: date | None = None) -> int:
        """Lapse unanswered requests, record breaches and act on them where the protocol says."""
        today = today or self.today()
        terminal = [s for s in self.protocol.states if self.protocol.is_terminal(s)]
        overdue = session.exec(
            select(Case).where(col(Case.due_on) < today, col(Case.state).not_in(terminal))
        ).all()
        # What each overdue case needs, read in a few queries rather than one or two per case:
        # every minute, the same breached cases come round again.
        requests: dict[str, InformationRequest] = {}
        breached: set[Breached] = set()
        for start in range(0, len(overdue), TICK_CHUNK):
            ids = [c.id for c in overdue[start : start + TICK_CHUNK]]
            for request in session.exec(
                select(InformationRequest).where(
                    col(InformationRequest.case_id).in_(ids), InformationRequest.status == "open"
                )
            ).all():
                requests.setdefault(request.case_id, request)
            recorded = session.execute(
                sa_select(
                    col(Breach.case_id), col(Breach.state), col(Breach.limit_name), col(Breach.due)
                ).where(col(Breach.case_id).in_(ids))
            ).all()
            breached.update((c, s, n, d) for c, s, n, d in recorded)
        acted = 0
        for case in overdue:
            acted += self._check_case(session, case, today, requests.get(case.id), breached)
        return acted + self._send_reminders(session, today)

    def _send_reminders(self, session: Session, today: date) -> int:
        """On the protocol's reminder day, remind the applicant of an unanswered request once."""
        due = session.exec(
            select(InformationRequest).where(
                InformationRequest.status == "open",
                col(InformationRequest.reminded_at).is_(None),
                col(InformationRequest.reminder_on) <= today,
            )
        ).all()
        for request in due:
            case = session.get(Case, request.case_id)
            if case is None:
                continue
            self._lock_case(session, case)
            request.reminded_at = self.now()
            session.add(request)
            self._audit(
                session,
                case,
                SYSTEM_WHO,
                "reminder_sent",
                case.state,
                case.state,
                {"request_id": request.id, "due": request.due.isoformat()},
            )
            session.add(case)
            self._emit(
                session,
                "case.information_reminder",
                case,
                CaseInformationReminder(
                    **self._refs(case),
                    request=InformationRequestRef(
                        id=request.id, question=request.question, due=request.due
                    ),
                ),
            )
        return len(due)

    def _check_case(
        self,
        session: Session,
        case: Case,
        today: date,
        request: InformationRequest | None,
        breached: set[Breached],
    ) -> int:
        """Act on one overdue case; `request` is its open request, `breached` those recorded."""
        if self.protocol.clock(case.state) == "paused":
            # While the applicant holds the case, its limit is the open request's lapse date.
            if request is None or today <= request.lapse_on:
                return 0
            return self._lapse(session, case, request, breached)
        found = deadlines.breach(
            case.state,
            case.tier,
            self.clock_started_on(case),
            today,
            paused_working_days=case.paused_working_days,
            protocol=self.protocol,
        )
        if found is None or not self._record_breach(
            session, case, found.limit, found.due, breached
        ):
            return 0
        if found.action is not None and found.action in self.protocol.allowed_actions(
            SYSTEM, case.state, case.tier
        ):
            transition = self.protocol.decide(
                found.action,
                SYSTEM,
                case.state,
                params={"reason": f"{found.limit} deadline breached"},
            )
            self._claim_version(session, case, case.version)
            self._apply(session, case, transition, SYSTEM_WHO, version_claimed=True)
        return 1

    def _lapse(
        self, session: Session, case: Case, request: InformationRequest, breached: set[Breached]
    ) -> int:
        """End the wait for an answer past its lapse date, as the paused stage's breach says."""
        deadline = self.protocol.deadlines[case.state]
        assert deadline.on_breach is not None, "a paused stage's breach must end the wait"
        self._record_breach(session, case, deadline.breach_limit, request.lapse_on, breached)
        request.status = REQUEST_LAPSED
        session.add(request)
        transition = self.protocol.decide(deadline.on_breach, SYSTEM, case.state)
        self._claim_version(session, case, case.version)
        case.decision = transition.to_state
        self._apply(session, case, transition, SYSTEM_WHO, version_claimed=True)
        return 1

    def _record_breach(
        self, session: Session, case: Case, limit: str, due: date, breached: set[Breached]
    ) -> bool:
        key = (case.id, case.state, limit, due)
        if key in breached:
            return False
        breached.add(key)
        self._lock_case(session, case)
        breach = Breach(
            case_id=case.id, state=case.state, limit_name=limit, due=due, recorded_at=self.now()
        )
        session.add(breach)
        note_breach(session, self.protocol, case, breach)
        self._audit(
            session,
            case,
            SYSTEM_WHO,
            "deadline_breached",
            case.state,
            case.state,
            {"state": case.state, "limit": limit, "due": due.isoformat()},
        )
        self._emit(
            session,
            "case.deadline_breached",
            case,
            CaseDeadlineBreached(**self._refs(case), stage=case.state, due=due),
        )
        session.add(case)
        return True
