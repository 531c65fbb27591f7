"""Review's service layer: every change to a case goes through `Casework._apply`.

One method checks the action with the protocol engine, moves the state and the clocks,
appends the hash-chained audit entry and stages the events, all in the caller's
transaction. HTTP routes, event handlers and the deadline ticker all come through here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy import tuple_, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from services.review.audit_service import chain_entry, record_of
from services.review.domain import deadlines
from services.review.domain import licences as licence_rules
from services.review.domain.audit import AuditEntry
from services.review.domain.calendar import working_days_between
from services.review.domain.priority import RuleSet, score
from services.review.domain.protocol import Actor, Protocol, Transition
from services.review.projection import note_breach, note_change, note_taken, prefetch_facts
from services.review.store import (
    AuditRecord,
    Breach,
    Case,
    CaseDocument,
    InformationRequest,
    LicenceRecord,
    Note,
    PriorityList,
    ShipmentRecord,
    add_case,
    case_by_application,
    licence_of,
    open_request,
    shipments_of,
)
from shared.config import AuditSettings
from shared.db import utcnow
from shared.directory import Directory, Principal
from shared.events import (
    ApplicationSubmitted,
    ApplicationWithdrawn,
    CaseAssigned,
    CaseDeadlineBreached,
    CaseDecided,
    CaseInformationReminder,
    CaseInformationRequested,
    CaseOpened,
    CasePriorityChanged,
    CaseStateChanged,
    CaseWithdrawalTooLate,
    Contact,
    DocumentAdded,
    InformationAnswered,
    InformationRequestRef,
    LicenceIssued,
    LicenceLine,
    LicenceRef,
    PriorityListIssued,
    new_event,
)
from shared.outbox import add_event
from shared.problems import Problem, conflict, not_found

SOURCE = "reechannel/review"
SYSTEM = Actor("system", None)
APPLICANT = Actor("applicant", None)
DECISIONS = {"approve": "approved", "refuse": "refused", "decline": "not_admitted"}
# Cases whose versions one statement claims (two bound values each; SQLite allows 32,766).
CLAIM_CHUNK = 1000
# Cases whose open requests and breaches one query of the deadline ticker reads.
TICK_CHUNK = 1000
Breached = tuple[str, str, str, date]


@dataclass(frozen=True)
class Who:
    """Who acts, as the audit records it."""

    id: str
    side: str
    role: str | None
    name: str = ""

    @property
    def actor(self) -> Actor:
        return Actor(self.side, self.role)  # type: ignore[arg-type]

    @classmethod
    def official(cls, principal: Principal) -> Who:
        assert principal.side is not None and principal.role is not None
        return cls(principal.subject_id, principal.side.value, principal.role.value, principal.name)


SYSTEM_WHO = Who("system", "system", None, "REE Channel")


def applicant_who(company_id: str) -> Who:
    return Who(company_id, "applicant", None)


class Casework:
    """The operations on cases; stateless apart from its collaborators."""

    def __init__(
        self,
        directory: Directory,
        protocol: Protocol | None = None,
        rules: RuleSet | None = None,
        today: Callable[[], date] | None = None,
        audit_key: bytes | None = None,
    ) -> None:
        self.directory = directory
        # The audit chain's HMAC key comes from settings, never from the database (F3).
        self.audit_key = audit_key or AuditSettings().audit_key.encode("utf-8")
        self.protocol = protocol or Protocol.load()
        self.rules = rules or RuleSet.default()
        self.today = today or (lambda: datetime.now(UTC).date())

    # --- reading -------------------------------------------------------------------------

    def visible_to(self, case: Case, side: str) -> bool:
        """CN officials see only cases sent to China (API.md)."""
        return side == "EU" or case.sent_to_cn_at is not None

    def get_for(self, session: Session, case_id: str, side: str) -> Case:
        case = session.get(Case, case_id)
        if case is None or not self.visible_to(case, side):
            raise not_found("case")
        return case

    def allowed_actions(self, case: Case, who: Who) -> list[str]:
        return self.protocol.allowed_actions(who.actor, case.state, case.tier, taken(case))

    # --- events from intake --------------------------------------------------------------

    def open_case(self, session: Session, data: ApplicationSubmitted) -> Case | None:
        if case_by_application(session, data.application_id) is not None:
            return None
        today = self.today()
        application = data.application.model_dump(mode="json")
        result = score(application, self.rules, today)
        company = self.directory.company(data.company_id)
        now = utcnow()
        case = Case(
            application_id=data.application_id,
            reference=data.reference,
            company_id=data.company_id,
            company_name=company.name if company else "",
            company_eori=company.eori if company else "",
            state="submitted",
            tier=result.tier,
            score=result.score,
            fired_rules=[f.as_dict() for f in result.fired],
            flags=list(result.flags),
            rules_version=result.rules_version,
            application=application,
            submitted_at=data.submitted_at,
            opened_at=now,
            stage_started_on=today,
            stage_started_at=now,
        )
        add_case(session, case)
        transition = self.protocol.decide("open", SYSTEM, "submitted")
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
        if case.state != "awaiting_applicant":
            return
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
            if case.state != "withdrawn":
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
        """Run one protocol action for an official; raises the domain's errors unchanged."""
        transition = self.protocol.decide(
            action,
            who.actor,
            case.state,
            tier=case.tier,
            params=params,
            previous_state=case.previous_state,
            today=self.today(),
            submitted_on=submitted_on(case),
            taken=taken(case),
        )
        self._claim_version(session, case, expected_version)
        if action == "issue_priority_list":
            self._put_on_list(session, [case], who, list_number=None)
            return case
        extra = self._effects(session, case, transition, who)
        self._apply(session, case, transition, who, extra, version_claimed=True)
        return case

    def _effects(
        self, session: Session, case: Case, transition: Transition, who: Who
    ) -> dict[str, Any]:
        """What an action does beyond moving the state; returns the audit payload."""
        params = transition.params
        payload = transition.payload()
        today = self.today()
        if transition.action == "request_information":
            schedule = deadlines.information_request_schedule(
                today, params.get("due_in_working_days"), protocol=self.protocol
            )
            request = InformationRequest(
                case_id=case.id,
                question=params["question"],
                asked_by_side=who.side,
                asked_by_id=who.id,
                from_state=case.state,
                due=schedule.due,
                reminder_on=schedule.reminder,
                lapse_on=schedule.lapse,
            )
            session.add(request)
            session.flush()
            payload.update(request_id=request.id, due=schedule.due.isoformat())
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
        elif transition.action == "set_priority":
            case.tier, case.tier_overridden = params["tier"], True
        elif transition.action == "acknowledge":
            case.acknowledged_on = params["accepted_on"]
        elif transition.action == "approve":
            licence = licence_rules.issue_licence(
                params["licence"], case.application["goods"], protocol=self.protocol
            )
            if session.get(LicenceRecord, licence.number) is not None:
                raise conflict(f"Licence number {licence.number} is already in use.")
            record = LicenceRecord(
                number=licence.number,
                case_id=case.id,
                type=licence.type,
                valid_from=licence.valid_from,
                valid_until=licence.valid_until,
                quantity_basis=licence.quantity_basis,
                lines=licence.as_dict()["lines"],
                issued_by=who.id,
            )
            session.add(record)
            payload["licence"] = licence.as_dict()
        elif transition.action == "fast_track":
            self._send_to_cn(case, list_number=None, position=None)
        if transition.action in DECISIONS:
            case.decision = DECISIONS[transition.action]
            case.decision_reason = params.get("reason")
            case.decision_detail = params.get("detail")
        return payload

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
            raise conflict(
                "The case has changed since you read it; reload and try again.",
                type_="stale-version",
            )
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
            raise conflict(
                "The case has changed since you read it; reload and try again.",
                type_="stale-version",
            )
        note_taken(session, cases)

    # --- priority lists --------------------------------------------------------------------

    def issue_priority_list(
        self,
        session: Session,
        who: Who,
        case_ids: Sequence[str] | None,
        max_cases: int | None,
    ) -> PriorityList:
        self.protocol.decide(
            "issue_priority_list",
            who.actor,
            "queued",
            params={
                "list_number": 1,
                "position": 1,
            },
        )
        query = select(Case).where(Case.state == "queued")
        if case_ids is not None:
            query = query.where(col(Case.id).in_(list(case_ids)))
        cases = sorted(session.exec(query).all(), key=queue_key)
        if case_ids is not None:
            missing = set(case_ids) - {c.id for c in cases}
            if missing:
                raise conflict(
                    "Only queued cases can be put on a list; not queued: "
                    + ", ".join(sorted(missing))
                )
        if max_cases is not None:
            cases = cases[:max_cases]
        if not cases:
            raise conflict("No queued cases to put on a list.")
        self._claim_versions(session, cases)
        return self._put_on_list(session, cases, who, list_number=None)

    def _put_on_list(
        self, session: Session, cases: Sequence[Case], who: Who, list_number: int | None
    ) -> PriorityList:
        plist = PriorityList(issued_by=who.id, case_ids=[c.id for c in cases])
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
        add_event(session, event)
        return plist

    def _send_to_cn(self, case: Case, list_number: int | None, position: int | None) -> None:
        case.list_number, case.list_position = list_number, position
        case.sent_to_cn_at = utcnow()

    # --- notes and assignment ------------------------------------------------------------

    def add_note(self, session: Session, case: Case, who: Who, text: str, visibility: str) -> Note:
        scope = "joint" if visibility == "joint" else who.side.lower()
        self._lock_case(session, case)
        note = Note(
            case_id=case.id,
            author_id=who.id,
            author_name=who.name,
            author_side=who.side,
            visibility=scope,
            text=text,
        )
        session.add(note)
        session.flush()
        self._audit(
            session,
            case,
            who,
            "note_added",
            case.state,
            case.state,
            {"note_id": note.id, "visibility": scope, "text": text},
        )
        session.add(case)
        return note

    def assign(self, session: Session, case: Case, who: Who, official_id: str | None) -> Case:
        target = official_id or who.id
        official = self.directory.official(target)
        if official is None or official.side != who.side:
            raise Problem(
                422,
                "Validation failed",
                "The official must exist and be of your side.",
                type_="validation-failed",
                errors=[{"field": "official_id", "message": "no such official of your side"}],
            )
        if not self.directory.can_sign_in(target):
            raise Problem(
                422,
                "Validation failed",
                "The official's credentials are all revoked; they cannot take a case.",
                type_="validation-failed",
                errors=[{"field": "official_id", "message": "the official's access is revoked"}],
            )
        if target != who.id and who.role != "supervisor":
            raise Problem(403, "Forbidden", "Only a supervisor may assign a case to someone else.")
        self._lock_case(session, case)
        self._set_contact(session, case, who.side, target)
        self._audit(
            session,
            case,
            who,
            "assigned",
            case.state,
            case.state,
            {"side": who.side, "official_id": target},
        )
        session.add(case)
        return case

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

    # --- licences ---------------------------------------------------------------------------

    def licence_domain(self, record: LicenceRecord) -> licence_rules.Licence:
        return licence_rules.Licence(
            number=record.number,
            type=record.type,
            valid_from=record.valid_from,
            valid_until=record.valid_until,
            quantity_basis=record.quantity_basis,  # type: ignore[arg-type]
            lines=tuple(
                licence_rules.LicenceLine(
                    line=int(line["line"]),
                    element=line["element"],
                    form=line.get("form"),
                    hs_code=line.get("hs_code"),
                    requested_kg=Decimal(str(line["requested_quantity_kg"])),
                    approved_kg=Decimal(str(line["approved_quantity_kg"])),
                )
                for line in record.lines
            ),
            revoked_on=record.revoked_on,
        )

    def shipments_domain(self, session: Session, number: str) -> list[licence_rules.Shipment]:
        return [
            licence_rules.Shipment(
                shipped_on=s.shipped_on,
                lines=tuple(
                    licence_rules.ShipmentLine(
                        key=int(line["key"]) if str(line["key"]).isdigit() else line["key"],
                        quantity_kg=Decimal(str(line["quantity_kg"])),
                    )
                    for line in s.lines
                ),
            )
            for s in shipments_of(session, number)
        ]

    def licence_view(self, session: Session, record: LicenceRecord) -> dict[str, Any]:
        licence = self.licence_domain(record)
        shipments = self.shipments_domain(session, record.number)
        remaining = licence_rules.remaining(licence, shipments)
        view = licence.as_dict()
        view["status"] = licence_rules.status(licence, shipments, self.today())
        view["remaining_kg"] = {str(k): str(v) for k, v in remaining.items()}
        view["shipments"] = [
            {
                "shipped_on": s.shipped_on.isoformat(),
                "lines": [
                    {"key": line.key, "quantity_kg": str(line.quantity_kg)} for line in s.lines
                ],
            }
            for s in shipments
        ]
        return view

    def record_shipment(
        self,
        session: Session,
        record: LicenceRecord,
        who: Who,
        lines: Sequence[Mapping[str, Any]],
        shipped_on: date,
    ) -> ShipmentRecord:
        self._lock_licence(session, record)
        licence = self.licence_domain(record)
        shipment = licence_rules.draw(
            licence,
            self.shipments_domain(session, record.number),
            lines,
            shipped_on,
            recorded_on=self.today(),
        )
        stored = ShipmentRecord(
            licence_number=record.number,
            shipped_on=shipment.shipped_on,
            lines=[
                {"key": line.key, "quantity_kg": str(line.quantity_kg)} for line in shipment.lines
            ],
            recorded_by=who.id,
        )
        session.add(stored)
        case = session.get(Case, record.case_id)
        if case is not None:
            self._lock_case(session, case)
            self._audit(
                session,
                case,
                who,
                "shipment_recorded",
                case.state,
                case.state,
                {"licence": record.number, "lines": stored.lines, "shipped_on": str(shipped_on)},
            )
            session.add(case)
        return stored

    def _lock_licence(self, session: Session, record: LicenceRecord) -> None:
        """Lock the licence row and read it again: two shipments cannot both draw the last
        kilograms, and a shipment waiting on a revocation sees the licence revoked."""
        session.execute(
            update(LicenceRecord)
            .where(col(LicenceRecord.number) == record.number)
            .values(number=record.number)
            .execution_options(synchronize_session=False)
        )
        session.refresh(record)

    def revoke_licence(
        self, session: Session, record: LicenceRecord, who: Who, reason: str
    ) -> LicenceRecord:
        self._lock_licence(session, record)
        if record.revoked_on is not None:
            raise conflict(f"Licence {record.number} was revoked on {record.revoked_on}.")
        record.revoked_on = self.today()
        session.add(record)
        case = session.get(Case, record.case_id)
        if case is not None:
            self._lock_case(session, case)
            self._audit(
                session,
                case,
                who,
                "licence_revoked",
                case.state,
                case.state,
                {"licence": record.number, "reason": reason},
            )
            session.add(case)
        return record

    # --- deadlines --------------------------------------------------------------------------

    def check_deadlines(self, session: Session, today: date | None = None) -> int:
        """Lapse unanswered requests, record breaches and escalate where the protocol says."""
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
            request.reminded_at = utcnow()
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
        if case.state == "awaiting_applicant":
            if request is None or today <= request.lapse_on:
                return 0
            self._record_breach(session, case, "lapse", request.lapse_on, breached)
            request.status = "lapsed"
            session.add(request)
            transition = self.protocol.decide("lapse", SYSTEM, case.state)
            self._claim_version(session, case, case.version)
            case.decision = "lapsed"
            self._apply(session, case, transition, SYSTEM_WHO, version_claimed=True)
            return 1
        start = case.acknowledged_on if case.state == "cn_review" else case.stage_started_on
        found = deadlines.breach(
            case.state,
            case.tier,
            start,
            today,
            paused_working_days=case.paused_working_days,
            protocol=self.protocol,
        )
        if found is None or not self._record_breach(
            session, case, found.limit, found.due, breached
        ):
            return 0
        if found.action == "escalate" and case.state == "cn_review":
            transition = self.protocol.decide(
                "escalate",
                SYSTEM,
                case.state,
                params={"reason": f"{found.limit} deadline breached"},
            )
            self._claim_version(session, case, case.version)
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
        breach = Breach(case_id=case.id, state=case.state, limit_name=limit, due=due)
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
        today = self.today()
        now = utcnow()
        from_state = case.state
        if not version_claimed and transition.action not in ("open",):
            self._claim_version(session, case, case.version)
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
        if transition.action == "set_priority":
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
        if self.protocol.is_terminal(case.state) and transition.changes_state:
            self._emit(
                session,
                "case.decided",
                case,
                CaseDecided(
                    **self._refs(case),
                    decision=case.state,
                    reason=case.decision_reason,
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
        if to_state == "awaiting_applicant":
            # The stage's clock pauses; it resumes where it was when the answer comes.
            case.previous_state, case.paused_since = from_state, today
            return
        if from_state == "awaiting_applicant" and to_state == case.previous_state:
            assert case.paused_since is not None
            case.paused_working_days += working_days_between("EU", case.paused_since, today)
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
        if case.state == "awaiting_applicant":
            request = open_request(session, case.id)
            answer_due = request.due if request else None
            case.due_on = answer_due
        elif case.state == "cn_review" and case.acknowledged_on is None:
            case.due_on = None
        elif case.state in self.protocol.deadlines:
            start = case.acknowledged_on if case.state == "cn_review" else case.stage_started_on
            assert start is not None
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
            at=utcnow(),
            from_state=from_state,
            to_state=to_state,
            payload=dict(payload),
        )
        # Chained onto the keyed joint chain and each side's view chain; moves the case's heads.
        record = record_of(chain_entry(case, entry, self.audit_key))
        session.add(record)
        return record

    # --- event helpers ----------------------------------------------------------------------

    def _refs(self, case: Case) -> dict[str, str]:
        return {
            "case_id": case.id,
            "application_id": case.application_id,
            "reference": case.reference,
            "company_id": case.company_id,
        }

    def _emit(self, session: Session, event_type: str, case: Case, data: Any) -> None:
        add_event(session, new_event(SOURCE, event_type, case.id, data))

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


def taken(case: Case) -> frozenset[str]:
    """The protocol's once-only actions (`once: true`) the case has had: each leaves its fact."""
    return frozenset({"acknowledge"} if case.acknowledged_on is not None else ())


def submitted_on(case: Case) -> date:
    """The day (UTC) the application was submitted; an aware or, on SQLite, naive UTC time."""
    at = case.submitted_at
    return (at.astimezone(UTC) if at.tzinfo else at).date()


# What a writer reads back under the case's row lock and chains onto: the joint chain, each
# side's view chain, the heads' MAC and the version. A column left out here would be chained
# onto as this transaction first read it, before the writer it waited for committed.
_HEAD_COLUMNS = (
    "audit_seq",
    "audit_head",
    "audit_seq_eu",
    "audit_head_eu",
    "audit_seq_cn",
    "audit_head_cn",
    "audit_head_mac",
    "version",
)
_AUDIT_HEAD = tuple(col(getattr(Case, name)) for name in _HEAD_COLUMNS)


def _chain_onto(case: Case, head: Sequence[Any]) -> None:
    """Take the audit heads (and version) read under the row lock as the case's own, unchanged
    in the session's eyes: they are what the database holds."""
    for name, value in zip(_HEAD_COLUMNS, head, strict=True):
        set_committed_value(case, name, value)


def queue_key(case: Case) -> tuple[str, date, datetime]:
    """Queues sort by tier, then deadline (none last), then age (PROTOCOL.md, priority)."""
    return (case.tier, case.due_on or date.max, case.opened_at)
