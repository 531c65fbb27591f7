"""Cases: reading them, opening and moving them on intake's events, officials' actions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, select

from services.review.domain import deadlines
from services.review.domain.errors import CaseNotFound
from services.review.domain.priority import production_stop_date, score
from services.review.domain.protocol import Transition
from services.review.domain.protocol_params import jsonable
from services.review.domain.search import searched_text
from services.review.service.core import submitted_on, taken
from services.review.service.licences import Licences
from services.review.service.lists import PriorityLists
from services.review.service.proposals import Proposals, proposer_of
from services.review.service.who import APPLICANT, SYSTEM, SYSTEM_WHO, Who, applicant_who
from services.review.store import (
    Case,
    CaseDocument,
    InformationRequest,
    add_case,
    case_by_application,
)
from shared.events import (
    ApplicationSubmitted,
    ApplicationWithdrawn,
    CaseInformationRequested,
    CaseOpened,
    CaseWithdrawalTooLate,
    DocumentAdded,
    InformationAnswered,
    InformationRequestRef,
)

__all__ = ["DECISION_ACTIONS", "CaseActions"]

# The actions that decide a case; the state each leads to is the decision recorded.
DECISION_ACTIONS = ("approve", "refuse", "decline")


class CaseActions(PriorityLists, Licences, Proposals):
    """Reading cases and every protocol action on them (a list's, a licence's and a
    proposal's part from PriorityLists, Licences and Proposals)."""

    # --- reading -------------------------------------------------------------------------

    def visible_to(self, case: Case, side: str) -> bool:
        """CN officials see only cases sent to China (API.md)."""
        return side == "EU" or case.sent_to_cn_at is not None

    def get_for(self, session: Session, case_id: str, side: str) -> Case:
        case = session.get(Case, case_id)
        if case is None or not self.visible_to(case, side):
            raise CaseNotFound()
        return case

    def allowed_actions(self, case: Case, who: Who) -> list[str]:
        """What `who` may do now; no second proposal while one awaits countersignature."""
        allowed = self.protocol.allowed_actions(who.actor, case.state, case.tier, taken(case))
        if case.pending_proposal_id is None:
            return allowed
        return [a for a in allowed if not self.protocol.needs_countersignature(a)]

    # --- events from intake --------------------------------------------------------------

    def open_case(self, session: Session, data: ApplicationSubmitted) -> Case | None:
        if case_by_application(session, data.application_id) is not None:
            return None
        today, now = self.today(), self.now()
        application = data.application.model_dump(mode="json")
        result = score(application, self.rules, today)
        company = self.directory.company(data.company_id)
        company_name = company.name if company else ""
        case = Case(
            application_id=data.application_id,
            reference=data.reference,
            company_id=data.company_id,
            company_name=company_name,
            company_eori=company.eori if company else "",
            state=self.protocol.initial_state(),
            tier=result.tier,
            score=result.score,
            fired_rules=[f.as_dict() for f in result.fired],
            flags=list(result.flags),
            rules_version=result.rules_version,
            scored_on=today,
            production_stop_date=production_stop_date(application),
            application=application,
            submitted_at=data.submitted_at,
            opened_at=now,
            stage_started_on=today,
            stage_started_at=now,
            search_eu=searched_text("EU", data.reference, company_name, application),
            search_cn=searched_text("CN", data.reference, company_name, application),
        )
        add_case(session, case)
        transition = self.protocol.decide("open", SYSTEM, case.state)
        self._apply(session, case, transition, SYSTEM_WHO, {"priority": result.as_dict()})
        self._emit(
            session,
            "case.opened",
            case,
            CaseOpened(
                **self._refs(case),
                state=case.state,
                priority_tier=case.tier,
                expected_decision_date=case.expected_decision_date,
                point_of_contact=self._contact(session, case.eu_contact_id),
            ),
        )
        return case

    def record_document(self, session: Session, data: DocumentAdded) -> None:
        case = case_by_application(session, data.application_id)
        if case is None:
            raise LookupError(f"no case for application {data.application_id} yet")
        if session.get(CaseDocument, data.document.id) is None:
            session.add(CaseDocument(case_id=case.id, **data.document.model_dump()))

    def record_answer(self, session: Session, data: InformationAnswered) -> None:
        case = case_by_application(session, data.application_id)
        if case is None:
            raise LookupError(f"no case for application {data.application_id} yet")
        request = session.get(InformationRequest, data.request_id)
        if request is None or request.case_id != case.id or request.status != "open":
            return  # answered already, lapsed, or never ours: nothing to move
        request.status, request.answer = "answered", data.answer
        request.answered_at, request.document_ids = data.answered_at, list(data.document_ids)
        session.add(request)
        if "answer" not in self.protocol.allowed_actions(APPLICANT, case.state, case.tier):
            return  # the case moved on (withdrawn, say): the answer is kept, nothing moves
        transition = self.protocol.decide(
            "answer",
            APPLICANT,
            case.state,
            tier=case.tier,
            params={"answer": data.answer, "document_ids": data.document_ids},
            previous_state=case.previous_state,
        )
        self._apply(
            session,
            case,
            transition,
            applicant_who(case.company_id),
            {"request_id": request.id, **transition.payload()},
        )

    def record_withdrawal(self, session: Session, data: ApplicationWithdrawn) -> None:
        case = case_by_application(session, data.application_id)
        if case is None:
            raise LookupError(f"no case for application {data.application_id} yet")
        if self.protocol.is_terminal(case.state):
            # Decided before the withdrawal arrived: the decision stands, nothing moves, and
            # intake (which took the withdrawal) is told, so the applicant's view ends in the
            # case's state with the late withdrawal in its timeline (red-team finding F10).
            if case.state != self.protocol.target_of("withdraw"):
                self._emit(
                    session,
                    "case.withdrawal_too_late",
                    case,
                    CaseWithdrawalTooLate(
                        **self._refs(case), decision=case.state, withdrawn_at=data.withdrawn_at
                    ),
                )
            return
        params = {"reason": data.reason} if data.reason else {}
        transition = self.protocol.decide("withdraw", APPLICANT, case.state, params=params)
        for request in session.exec(
            select(InformationRequest).where(
                InformationRequest.case_id == case.id, InformationRequest.status == "open"
            )
        ).all():
            request.status = "closed"
            session.add(request)
        self._apply(session, case, transition, applicant_who(case.company_id))

    # --- officials' actions --------------------------------------------------------------

    def act(
        self,
        session: Session,
        case: Case,
        who: Who,
        action: str,
        params: Mapping[str, Any],
        expected_version: int,
    ) -> Case:
        """Run one protocol action for an official; raises the domain's errors unchanged.

        An action the protocol marks `countersign` only becomes a proposal (four eyes)."""
        transition = self._decide(case, who, action, params)
        if self.protocol.needs_countersignature(action):
            self._propose(session, case, who, transition, expected_version)
            return case
        self._claim_version(session, case, expected_version)
        if action == "issue_priority_list":
            self._put_on_list(session, [case], who, list_number=None)
            return case
        extra = self._effects(session, case, transition, who)
        self._apply(session, case, transition, who, extra, version_claimed=True)
        return case

    def countersign(
        self,
        session: Session,
        case: Case,
        who: Who,
        proposal_id: str,
        expected_version: int | None = None,
    ) -> Case:
        """A second official countersigns the pending proposal: its action takes effect now,
        decided again by the engine as the proposer's, on the case as it is."""
        self._claim_version(
            session, case, case.version if expected_version is None else expected_version
        )
        proposal = self._open_proposal(session, case, who, proposal_id)
        self._require_verb("countersign", proposal, who)
        proposer = proposer_of(proposal)
        transition = self._decide(case, proposer, proposal.action, proposal.params)
        self._close_proposal(session, case, proposal, who, "countersigned")
        payload = self._effects(session, case, transition, proposer)
        payload.update(proposal_id=proposal.id, proposed_by=proposer.id)
        self._apply(session, case, transition, who, payload, version_claimed=True)
        return case

    def _decide(self, case: Case, who: Who, action: str, params: Mapping[str, Any]) -> Transition:
        """The engine's decision on `who` taking `action` on the case as it stands."""
        return self.protocol.decide(
            action,
            who.actor,
            case.state,
            tier=case.tier,
            params=params,
            previous_state=case.previous_state,
            today=self.today(),
            submitted_on=submitted_on(case),
            taken=taken(case),
            stage_started_on=case.stage_started_on,
            official_side=self.official_side,
        )

    def _effects(
        self, session: Session, case: Case, transition: Transition, who: Who
    ) -> dict[str, Any]:
        """What an action does beyond moving the state; returns the audit payload."""
        params = transition.params
        payload = transition.payload()
        if transition.action == "request_information":
            payload.update(self._ask(session, case, who, params))
        elif transition.action == "set_priority":
            case.tier, case.tier_overridden = params["tier"], True
        elif transition.action == "acknowledge":
            case.acknowledged_on = params["accepted_on"]
        elif transition.action == "correct_acceptance_date":
            # The statutory clock counts from the corrected day (_apply refreshes deadlines).
            payload["previous_accepted_on"] = jsonable(case.acknowledged_on)
            case.acknowledged_on = params["accepted_on"]
        elif transition.action == "approve":
            payload["licence"] = self._issue_licence(session, case, who, params["licence"])
        elif transition.action == "fast_track":
            self._send_to_cn(case, list_number=None, position=None)
        if transition.action in DECISION_ACTIONS:
            case.decision = transition.to_state
            case.decision_reason = params.get("reason")
            case.decision_detail = params.get("detail")
        return payload

    def _ask(
        self, session: Session, case: Case, who: Who, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Open a request for information; returns what the audit adds about it."""
        schedule = deadlines.information_request_schedule(
            self.today(), params.get("due_in_working_days"), protocol=self.protocol
        )
        request = InformationRequest(
            case_id=case.id,
            question=params["question"],
            asked_by_side=who.side,
            asked_by_id=who.id,
            asked_at=self.now(),
            from_state=case.state,
            due=schedule.due,
            reminder_on=schedule.reminder,
            lapse_on=schedule.lapse,
        )
        session.add(request)
        session.flush()
        self._emit(
            session,
            "case.information_requested",
            case,
            CaseInformationRequested(
                **self._refs(case),
                request=InformationRequestRef(
                    id=request.id, question=request.question, due=request.due
                ),
            ),
        )
        return {"request_id": request.id, "due": schedule.due.isoformat()}
