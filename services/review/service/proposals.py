"""Four eyes: an action the protocol marks `countersign` is first a proposal on the case.

A proposal waits until an official who may countersign it does (the action then takes effect
through the one state-change path, CaseActions.countersign), rejects it, or it is withdrawn;
it is superseded when the case moves on first (CaseworkCore._apply). Its audit entries carry
the proposing side as their visibility, so the other side never sees a pending proposal.
"""

from __future__ import annotations

from sqlmodel import Session

from services.review.domain.errors import (
    NotPermitted,
    ProposalClosed,
    ProposalNotFound,
    ProposalPending,
    StaleCase,
)
from services.review.domain.protocol import Transition
from services.review.service.core import CaseworkCore, proposal_ref
from services.review.service.who import Who
from services.review.store import Case, Proposal

__all__ = ["Proposals", "proposer_of"]


def proposer_of(proposal: Proposal) -> Who:
    """The official who made the proposal, as the engine and the audit see them."""
    return Who(
        proposal.proposed_by_id, proposal.side, proposal.proposed_by_role, proposal.proposed_by_name
    )


class Proposals(CaseworkCore):
    def _propose(
        self, session: Session, case: Case, who: Who, transition: Transition, expected: int
    ) -> Proposal:
        """Record the allowed `transition` as a proposal instead of applying it.

        The case's version does not move (as for a note): the other side must not learn of
        a proposal from it, and the case has not changed yet.
        """
        self._lock_case(session, case)
        if case.version != expected:
            raise StaleCase()
        if case.pending_proposal_id is not None:
            raise ProposalPending(transition.action, case.state)
        proposal = Proposal(
            case_id=case.id,
            action=transition.action,
            params=transition.payload(),
            side=who.side,
            proposed_by_id=who.id,
            proposed_by_role=who.role or "",
            proposed_by_name=who.name,
            proposed_at=self.now(),
        )
        session.add(proposal)
        session.flush()
        case.pending_proposal_id = proposal.id
        self._audit(
            session,
            case,
            who,
            "proposed",
            case.state,
            case.state,
            {**proposal_ref(proposal), "params": proposal.params},
        )
        session.add(case)
        return proposal

    def _open_proposal(self, session: Session, case: Case, who: Who, proposal_id: str) -> Proposal:
        """The case's proposal `proposal_id`, pending, of the caller's side; read under the
        case's lock (taken by the caller), so a concurrent close is seen."""
        proposal = session.get(Proposal, proposal_id, populate_existing=True)
        if proposal is None or proposal.case_id != case.id or proposal.side != who.side:
            raise ProposalNotFound()
        if proposal.status != "pending":
            raise ProposalClosed(proposal.status)
        return proposal

    def proposal_verbs(self, proposal: Proposal, who: Who) -> list[str]:
        """What `who` may do with the pending proposal, in the protocol's order."""
        return [
            verb for verb in self.protocol.proposals if self._refusal(verb, proposal, who) is None
        ]

    def _refusal(self, verb: str, proposal: Proposal, who: Who) -> str | None:
        proposer = proposer_of(proposal).actor
        check = (
            self.protocol.withdrawal_refusal
            if verb == "withdraw"
            else self.protocol.countersigner_refusal
        )
        return check(proposal.action, proposer, proposal.proposed_by_id, who.actor, who.id)

    def _require_verb(self, verb: str, proposal: Proposal, who: Who) -> None:
        refusal = self._refusal(verb, proposal, who)
        if refusal is not None:
            raise NotPermitted(verb, refusal)

    def reject_proposal(
        self, session: Session, case: Case, who: Who, proposal_id: str, reason: str | None
    ) -> Proposal:
        return self._end_proposal(session, case, who, proposal_id, "reject", reason)

    def withdraw_proposal(
        self, session: Session, case: Case, who: Who, proposal_id: str, reason: str | None
    ) -> Proposal:
        return self._end_proposal(session, case, who, proposal_id, "withdraw", reason)

    def _end_proposal(
        self,
        session: Session,
        case: Case,
        who: Who,
        proposal_id: str,
        verb: str,
        reason: str | None,
    ) -> Proposal:
        self._lock_case(session, case)
        proposal = self._open_proposal(session, case, who, proposal_id)
        self._require_verb(verb, proposal, who)
        status = {"reject": "rejected", "withdraw": "withdrawn"}[verb]
        self._close_proposal(session, case, proposal, who, status)
        payload = {**proposal_ref(proposal), **({"reason": reason} if reason else {})}
        self._audit(session, case, who, f"proposal_{status}", case.state, case.state, payload)
        return proposal
