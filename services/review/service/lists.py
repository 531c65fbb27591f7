"""Priority lists: queued cases sent to China together, best first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlmodel import Session, col, select

from services.review.domain.errors import CaseConflict
from services.review.projection import prefetch_facts
from services.review.service.core import SOURCE, CaseworkCore
from services.review.service.who import Who
from services.review.store import Case, PriorityList
from shared.events import PriorityListIssued, new_event
from shared.i18n import N_
from shared.outbox import add_event

__all__ = ["PriorityLists", "queue_key"]


class PriorityLists(CaseworkCore):
    def issue_priority_list(
        self,
        session: Session,
        who: Who,
        case_ids: Sequence[str] | None,
        max_cases: int | None,
    ) -> PriorityList:
        listable = self.protocol.actions["issue_priority_list"].from_states
        # Who may issue a list is the action's rule: checked once, before any case is read.
        self.protocol.decide(
            "issue_priority_list", who.actor, listable[0], params={"list_number": 1, "position": 1}
        )
        query = select(Case).where(col(Case.state).in_(listable))
        if case_ids is not None:
            query = query.where(col(Case.id).in_(list(case_ids)))
        cases = sorted(session.exec(query).all(), key=queue_key)
        if case_ids is not None:
            missing = set(case_ids) - {c.id for c in cases}
            if missing:
                raise CaseConflict(
                    N_("Only queued cases can be put on a list; not queued: %(cases)s"),
                    cases=", ".join(sorted(missing)),
                )
        if max_cases is not None:
            cases = cases[:max_cases]
        if not cases:
            raise CaseConflict(N_("No queued cases to put on a list."))
        self._claim_versions(session, cases)
        return self._put_on_list(session, cases, who, list_number=None)

    def _put_on_list(
        self, session: Session, cases: Sequence[Case], who: Who, list_number: int | None
    ) -> PriorityList:
        plist = PriorityList(issued_by=who.id, case_ids=[c.id for c in cases], issued_at=self.now())
        session.add(plist)
        session.flush()
        assert plist.number is not None
        prefetch_facts(session, [c.id for c in cases])
        for position, case in enumerate(cases, start=1):
            transition = self.protocol.decide(
                "issue_priority_list",
                who.actor,
                case.state,
                tier=case.tier,
                params={"list_number": plist.number, "position": position},
            )
            self._send_to_cn(case, plist.number, position)
            self._apply(session, case, transition, who, version_claimed=True)
        event = new_event(
            SOURCE,
            "priority_list.issued",
            str(plist.number),
            PriorityListIssued(
                number=plist.number,
                case_ids=[c.id for c in cases],
                application_ids=[c.application_id for c in cases],
                issued_at=plist.issued_at,
            ),
        )
        add_event(session, event.model_copy(update={"time": self.now()}))
        return plist

    def _send_to_cn(self, case: Case, list_number: int | None, position: int | None) -> None:
        case.list_number, case.list_position = list_number, position
        case.sent_to_cn_at = self.now()


def queue_key(case: Case) -> tuple[str, date, datetime]:
    """Queues sort by tier, then deadline (none last), then age (PROTOCOL.md, priority)."""
    return (case.tier, case.due_on or date.max, case.opened_at)
