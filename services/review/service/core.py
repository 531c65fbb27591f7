"""The one path by which a case changes, and what every part of the service layer shares.

`CaseworkCore._apply` checks nothing itself (the protocol engine's `Transition` says what
is allowed); it moves the state and the clocks, refreshes the deadlines, appends the
hash-chained audit entry, feeds the projections and stages the events, all in the caller's
transaction. The version claim and the case lock serialise the writers of one case.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import tuple_, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col

from services.review.audit_service import chain_entry, record_of
from services.review.domain import deadlines
from services.review.domain.audit import AuditEntry
from services.review.domain.calendar import working_days_between
from services.review.domain.errors import NotPermitted, StaleCase
from services.review.domain.priority import RuleSet
from services.review.domain.protocol import Protocol, Transition
from services.review.projection import note_change, note_taken
from services.review.service.clock import SYSTEM_CLOCK, Clock, today_on
from services.review.service.who import Who
from services.review.store import (
    AuditRecord,
    Case,
    LicenceRecord,
    Proposal,
    licence_of,
    open_request,
    pending_proposal,
)
from shared.config import AuditSettings
from shared.directory import Directory
from shared.events import (
    CaseAcknowledged,
    CaseAssigned,
    CaseDecided,
    CasePriorityChanged,
    CaseStateChanged,
    Contact,
    LicenceIssued,
    LicenceLine,
    LicenceRef,
    new_event,
)
from shared.outbox import add_event

__all__ = ["SOURCE", "CaseworkCore", "proposal_ref", "submitted_on", "taken"]

SOURCE = "reechannel/review"
# Cases whose versions one statement claims (two bound values each; SQLite allows 32,766).
CLAIM_CHUNK = 1000


class CaseworkCore:
    """The collaborators and the state-change path the concerns of casework build on."""

    def __init__(
        self,
        directory: Directory,
        protocol: Protocol | None = None,
        rules: RuleSet | None = None,
        clock: Clock | None = None,
        audit_key: bytes | None = None,
    ) -> None:
        self.directory = directory
        # The audit chain's HMAC key comes from settings, never from the database (F3).
        self.audit_key = audit_key or AuditSettings().audit_key.encode("utf-8")
        self.protocol = protocol or Protocol.load()
        self.rules = rules or RuleSet.default()
        self.clock = clock or SYSTEM_CLOCK

    def now(self) -> datetime:
        return self.clock.now()

    def today(self) -> date:
        return today_on(self.clock)

    def clock_started_on(self, case: Case) -> date | None:
        """The day the case's stage deadline counts from (None: its clock has not started,
        as before MOFCOM acknowledges a case in review)."""
        if self.protocol.clock_starts_on(case.state) == "acknowledgement":
            return case.acknowledged_on
        return case.stage_started_on

    def statutory_due(self, case: Case) -> date | None:
        """The statutory limit of the case's stage, where it runs from the acknowledgement
        (None: no such stage, or MOFCOM has not acknowledged the case)."""
        if self.protocol.clock_starts_on(case.state) != "acknowledgement":
            return None
        if case.acknowledged_on is None:
            return None
        return deadlines.due_date(
            case.state, case.acknowledged_on, case.tier, limit="statutory", protocol=self.protocol
        )

    def may(self, who: Who, permission: str) -> bool:
        """Whether the protocol's `permission` is the acting official's."""
        return self.protocol.permits(permission, who.side, who.role)

    def require(self, who: Who, permission: str, refusal: str) -> None:
        """Raise NotPermitted (with `refusal` as its sentence) unless `who` holds `permission`."""
        if not self.may(who, permission):
            raise NotPermitted(permission, refusal)

    def official_side(self, official_id: str) -> str | None:
        """The side of the official with this id; None when there is none (the engine checks
        a joint meeting's participants with it)."""
        official = self.directory.official(official_id)
        return None if official is None else official.side

    # --- the one place a case changes -------------------------------------------------------

    def _apply(
        self,
        session: Session,
        case: Case,
        transition: Transition,
        who: Who,
        payload: dict[str, Any] | None = None,
        *,
        version_claimed: bool = False,
    ) -> None:
        now = self.now()
        today = today_on(self.clock)
        from_state = case.state
        if not version_claimed and transition.action not in ("open",):
            self._claim_version(session, case, case.version)
        if transition.changes_state and case.pending_proposal_id is not None:
            self._supersede_proposal(session, case, who, transition.action)
        if transition.changes_state:
            self._move_clocks(case, from_state, transition.to_state, today, now)
            case.state = transition.to_state
            if self.protocol.is_terminal(case.state):
                case.decided_at = now
        if who.side in ("EU", "CN") and who.role is not None:
            # The first official of a side to act becomes that side's point of contact.
            current = case.eu_contact_id if who.side == "EU" else case.cn_contact_id
            if current is None:
                self._set_contact(session, case, who.side, who.id)
        self._refresh_deadlines(session, case, today)
        case.updated_at = now
        entry = self._audit(
            session,
            case,
            who,
            transition.action,
            from_state,
            case.state,
            payload if payload is not None else transition.payload(),
        )
        session.add(case)
        note_change(session, self.protocol, case, entry)
        self._emit_change(session, case, transition, from_state)

    def _emit_change(
        self, session: Session, case: Case, transition: Transition, from_state: str
    ) -> None:
        """The events of one applied transition."""
        if transition.changes_state and transition.action != "open":
            self._emit(
                session,
                "case.state_changed",
                case,
                CaseStateChanged(
                    **self._refs(case),
                    action=transition.action,
                    from_state=from_state,
                    to_state=case.state,
                    priority_tier=case.tier,
                    expected_decision_date=case.expected_decision_date,
                    point_of_contact=self._contact(session, case.eu_contact_id),
                ),
            )
        if transition.action in ("set_priority", "rescore"):
            self._emit(
                session,
                "case.priority_changed",
                case,
                CasePriorityChanged(
                    **self._refs(case),
                    priority_tier=case.tier,
                    expected_decision_date=case.expected_decision_date,
                ),
            )
        if transition.action == "acknowledge":
            # No state moves, but the applicant's dates do: the statutory clock starts.
            assert case.acknowledged_on is not None
            self._emit(
                session,
                "case.acknowledged",
                case,
                CaseAcknowledged(
                    **self._refs(case),
                    state=case.state,
                    accepted_on=case.acknowledged_on,
                    statutory_due_date=self.statutory_due(case),
                    expected_decision_date=case.expected_decision_date,
                ),
            )
        if self.protocol.is_terminal(case.state) and transition.changes_state:
            self._emit(
                session,
                "case.decided",
                case,
                CaseDecided(
                    **self._refs(case),
                    decision=case.state,
                    reason=case.decision_reason,
                    # Named by the action that decided (a decline's codes are not a refusal's).
                    reason_label=self.protocol.names(
                        "reason", case.decision_reason, of=transition.action
                    )
                    if case.decision_reason
                    else None,
                    detail=case.decision_detail,
                ),
            )
        if transition.action == "approve":
            record = licence_of(session, case.id)
            assert record is not None
            self._emit(
                session,
                "licence.issued",
                case,
                LicenceIssued(**self._refs(case), licence=self._licence_ref(record)),
            )

    def _move_clocks(
        self, case: Case, from_state: str, to_state: str, today: date, now: datetime
    ) -> None:
        if self.protocol.clock(to_state) == "paused":
            # The stage's clock pauses; it resumes where it was when the answer comes.
            case.previous_state, case.paused_since = from_state, today
            return
        if self.protocol.clock(from_state) == "paused" and to_state == case.previous_state:
            assert case.paused_since is not None
            # The pause is counted on the calendar of whoever held the case meanwhile.
            side = self.protocol.calendar_side(from_state)
            assert side is not None
            case.paused_working_days += working_days_between(side, case.paused_since, today)
            case.previous_state, case.paused_since = None, None
            return
        case.previous_state, case.paused_since = None, None
        case.stage_started_on, case.stage_started_at = today, now
        case.paused_working_days = 0

    def _refresh_deadlines(self, session: Session, case: Case, today: date) -> None:
        if self.protocol.is_terminal(case.state):
            case.due_on, case.expected_decision_date = None, None
            return
        answer_due = None
        start = self.clock_started_on(case)
        if self.protocol.clock(case.state) == "paused":
            request = open_request(session, case.id)
            answer_due = request.due if request else None
            case.due_on = answer_due
        elif start is None:
            case.due_on = None
        elif case.state in self.protocol.deadlines:
            case.due_on = deadlines.due_date(
                case.state,
                start,
                case.tier,
                paused_working_days=case.paused_working_days,
                protocol=self.protocol,
            )
        case.expected_decision_date = deadlines.expected_decision_date(
            case.state,
            case.tier,
            case.stage_started_on,
            today,
            case.acknowledged_on,
            paused_working_days=case.paused_working_days,
            previous_state=case.previous_state,
            answer_due=answer_due,
            protocol=self.protocol,
        )

    # --- proposals awaiting countersignature (four eyes) -----------------------------------

    def _close_proposal(
        self, session: Session, case: Case, proposal: Proposal, who: Who, status: str
    ) -> None:
        proposal.status, proposal.closed_by_id, proposal.closed_at = status, who.id, self.now()
        case.pending_proposal_id = None
        session.add(proposal)
        session.add(case)

    def _supersede_proposal(self, session: Session, case: Case, who: Who, action: str) -> None:
        """The case moves on before its proposal was countersigned: the proposal was made on
        a state the case has left, so it closes (audited, for the proposing side only)."""
        proposal = pending_proposal(session, case)
        if proposal is None:
            case.pending_proposal_id = None
            return
        self._close_proposal(session, case, proposal, who, "superseded")
        self._audit(
            session,
            case,
            who,
            "proposal_superseded",
            case.state,
            case.state,
            {**proposal_ref(proposal), "by_action": action},
        )

    # --- serialising the writers of a case --------------------------------------------------

    def _claim_version(self, session: Session, case: Case, expected: int) -> None:
        # The first writer bumps the version; a concurrent second finds no row to update.
        # The claim locks the row, so the audit head it returns is the one to chain onto.
        claimed = session.execute(
            update(Case)
            .where(col(Case.id) == case.id, col(Case.version) == expected)
            .values(version=expected + 1)
            .returning(*_AUDIT_HEAD)
            .execution_options(synchronize_session=False)
        ).first()
        if claimed is None:
            session.rollback()
            raise StaleCase()
        _chain_onto(case, claimed)
        note_taken(session, [case])

    def _lock_case(self, session: Session, case: Case) -> None:
        """Serialise the writers of one case that take no If-Match (notes, assignments,
        shipments, revocations, the ticker's entries) with each other and with actions.

        Every one of them appends to the case's audit chain at `audit_seq + 1`: two writers
        that read the same head would both claim the same seq (a unique key) and one would
        fail. A no-op UPDATE takes the row lock on PostgreSQL (the write lock on SQLite) until
        the transaction ends, and returns the head as it is now, committed by the writer
        waited for. The pending changes of this transaction are flushed first (autoflush),
        so the returned head includes them. The version is not bumped: a note does not make
        an official's If-Match stale.
        """
        head = session.execute(
            update(Case)
            .where(col(Case.id) == case.id)
            .values(audit_seq=col(Case.audit_seq))
            .returning(*_AUDIT_HEAD)
            .execution_options(synchronize_session=False)
        ).one()
        _chain_onto(case, head)

    def _claim_versions(self, session: Session, cases: Sequence[Case]) -> None:
        """_claim_version for many cases in one statement: all of them, or a conflict."""
        claimed = 0
        for start in range(0, len(cases), CLAIM_CHUNK):
            chunk = cases[start : start + CLAIM_CHUNK]
            by_id = {c.id: c for c in chunk}
            heads = session.execute(
                update(Case)
                .where(
                    tuple_(col(Case.id), col(Case.version)).in_([(c.id, c.version) for c in chunk])
                )
                .values(version=col(Case.version) + 1)
                .returning(col(Case.id), *_AUDIT_HEAD)
                .execution_options(synchronize_session=False)
            ).all()
            for head in heads:
                # A note may have moved the head without the version (_lock_case).
                _chain_onto(by_id[head[0]], head[1:])
            claimed += len(heads)
        if claimed != len(cases):
            session.rollback()
            raise StaleCase()
        note_taken(session, cases)

    # --- the audit trail, contacts and events -----------------------------------------------

    def _audit(
        self,
        session: Session,
        case: Case,
        who: Who,
        action: str,
        from_state: str | None,
        to_state: str | None,
        payload: Mapping[str, Any],
    ) -> AuditRecord:
        entry = AuditEntry(
            id=str(uuid.uuid4()),
            case_id=case.id,
            seq=0,
            actor_id=who.id,
            actor_side=who.side,
            actor_role=who.role,
            action=action,
            at=self.now(),
            from_state=from_state,
            to_state=to_state,
            payload=dict(payload),
        )
        # Chained onto the keyed joint chain and each side's view chain; moves the case's heads.
        record = record_of(chain_entry(case, entry, self.audit_key))
        session.add(record)
        return record

    def _set_contact(self, session: Session, case: Case, side: str, official_id: str) -> None:
        if side == "EU":
            if case.eu_contact_id == official_id:
                return
            case.eu_contact_id = official_id
        else:
            if case.cn_contact_id == official_id:
                return
            case.cn_contact_id = official_id
        self._emit(
            session,
            "case.assigned",
            case,
            CaseAssigned(
                **self._refs(case), side=side, point_of_contact=self._contact(session, official_id)
            ),
        )

    def _refs(self, case: Case) -> dict[str, str]:
        return {
            "case_id": case.id,
            "application_id": case.application_id,
            "reference": case.reference,
            "company_id": case.company_id,
        }

    def _emit(self, session: Session, event_type: str, case: Case, data: BaseModel) -> None:
        event = new_event(SOURCE, event_type, case.id, data)
        # The event happened at the casework's now (a simulated past day, in the simulator).
        add_event(session, event.model_copy(update={"time": self.now()}))

    def _contact(self, session: Session, official_id: str | None) -> Contact | None:
        """The point of contact as events carry it, read once per official and transaction.

        A priority list moves hundreds of cases with the same contact in one transaction.
        """
        if official_id is None:
            return None
        known: dict[str, Contact | None] = session.info.setdefault("contacts", {})
        if official_id not in known:
            official = self.directory.official(official_id)
            known[official_id] = (
                None
                if official is None
                else Contact(id=official.id, name=official.name, side=official.side)
            )
        return known[official_id]

    def _licence_ref(self, record: LicenceRecord) -> LicenceRef:
        return LicenceRef(
            number=record.number,
            type=record.type,
            type_label=self.protocol.names("licence_type", record.type),
            valid_from=record.valid_from,
            valid_until=record.valid_until,
            status="active",
            lines=[
                LicenceLine(
                    line=int(line["line"]),
                    element=line["element"],
                    form=line.get("form") or "",
                    hs_code=line.get("hs_code"),
                    approved_quantity_kg=float(line["approved_quantity_kg"]),
                )
                for line in record.lines
            ],
        )


def proposal_ref(proposal: Proposal) -> dict[str, str]:
    """What every audit entry about a proposal carries; `visibility` keeps it on the
    proposing side, as a side's note (domain/visibility.py)."""
    return {
        "proposal_id": proposal.id,
        "action": proposal.action,
        "visibility": proposal.side.lower(),
    }


def taken(case: Case) -> frozenset[str]:
    """The protocol's once-only actions (`once: true`) the case has had: each leaves its fact."""
    return frozenset({"acknowledge"} if case.acknowledged_on is not None else ())


def submitted_on(case: Case) -> date:
    """The day (UTC) the application was submitted; an aware or, on SQLite, naive UTC time."""
    at = case.submitted_at
    return (at.astimezone(UTC) if at.tzinfo else at).date()


# Every head an audit entry chains onto: the joint chain's, each side's view chain's and
# their MAC. All are read under the row lock: a writer that took only the joint head would
# chain a side's view onto the head another writer had just moved on.
_HEAD_FIELDS = (
    "audit_seq",
    "audit_head",
    "audit_seq_eu",
    "audit_head_eu",
    "audit_seq_cn",
    "audit_head_cn",
    "audit_head_mac",
    "version",
)
_AUDIT_HEAD = tuple(col(getattr(Case, name)) for name in _HEAD_FIELDS)


def _chain_onto(case: Case, head: Sequence[Any]) -> None:
    """Take the audit heads (and version) read under the row lock as the case's own,
    unchanged in the session's eyes: they are what the database holds."""
    for name, value in zip(_HEAD_FIELDS, head, strict=True):
        set_committed_value(case, name, value)
