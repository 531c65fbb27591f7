"""Review's tables and queries: cases, requests, notes, lists, licences, shipments, audit."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from shared.db import RowsByKey, empty_dict, empty_list, utcnow
from shared.outbox import OUTBOX_TABLES


def new_id() -> str:
    return str(uuid.uuid4())


class Case(SQLModel, table=True):
    """One application under review; `version` guards concurrent actions (If-Match)."""

    __tablename__ = "cases"
    __table_args__ = (
        # The queue's order (tier, deadline, age) with and without a state filter, so a page
        # is read off an index instead of sorting every case.
        Index("ix_cases_queue", "state", "tier", "due_on", "opened_at"),
        Index("ix_cases_order", "tier", "due_on", "opened_at", "id"),
        Index("ix_cases_list", "list_number", "list_position"),
        # The CN queue (cases sent to China), `assigned=me`, and the deadline ticker.
        Index("ix_cases_sent_to_cn", "sent_to_cn_at"),
        Index("ix_cases_eu_contact", "eu_contact_id"),
        Index("ix_cases_cn_contact", "cn_contact_id"),
        Index("ix_cases_due", "due_on"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    application_id: str = Field(max_length=36, unique=True)
    reference: str = Field(max_length=20, index=True)
    company_id: str = Field(max_length=36, index=True)
    company_name: str = Field(default="", max_length=200)
    company_eori: str = Field(default="", max_length=17)
    state: str = Field(max_length=30)
    previous_state: str | None = Field(default=None, max_length=30)
    version: int = 1
    tier: str = Field(max_length=2)
    score: int = 0
    fired_rules: list[dict[str, Any]] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False)
    )
    flags: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    rules_version: str = Field(default="", max_length=40)
    # The day the score was last computed: open cases are scored again each day (urgency ages).
    scored_on: date | None = None
    tier_overridden: bool = False
    application: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    submitted_at: datetime
    opened_at: datetime = Field(default_factory=utcnow)
    stage_started_on: date
    stage_started_at: datetime = Field(default_factory=utcnow)
    paused_since: date | None = None
    paused_working_days: int = 0
    acknowledged_on: date | None = None
    due_on: date | None = None
    expected_decision_date: date | None = None
    # The applicant's stated production stop, out of `application`, to count in SQL the cases
    # that stop before their expected decision date.
    production_stop_date: date | None = None
    list_number: int | None = None
    list_position: int | None = None
    sent_to_cn_at: datetime | None = None
    eu_contact_id: str | None = Field(default=None, max_length=36)
    cn_contact_id: str | None = Field(default=None, max_length=36)
    decision: str | None = Field(default=None, max_length=20)
    decision_reason: str | None = Field(default=None, max_length=40)
    decision_detail: str | None = None
    decided_at: datetime | None = None
    # The proposal awaiting countersignature (four eyes), if one is pending.
    pending_proposal_id: str | None = Field(default=None, max_length=36)
    audit_seq: int = 0
    audit_head: str = Field(default="0" * 64, max_length=64)
    # Each side's view chain (services/review/domain/audit.py): its length and last link.
    audit_seq_eu: int = 0
    audit_head_eu: str = Field(default="0" * 64, max_length=64)
    audit_seq_cn: int = 0
    audit_head_cn: str = Field(default="0" * 64, max_length=64)
    # HMAC over all the heads above (REE_AUDIT_KEY): moving them back needs the key.
    audit_head_mac: str = Field(default="", max_length=64)
    updated_at: datetime = Field(default_factory=utcnow)
    # What each side finds the case by (domain/search.py), written when the case is opened.
    # On PostgreSQL each has a trigram index (migration 7a2c5a8ebea1), declared only there:
    # its operator class lives in pg_trgm's schema, which the migration looks up.
    search_eu: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    search_cn: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))


class PriorityRuleSet(SQLModel, table=True):
    """A rule set a supervisor adopted; the latest adopted is in force (none: the packaged)."""

    __tablename__ = "priority_rule_sets"

    version: str = Field(primary_key=True, max_length=40)
    rules: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    reason: str = Field(max_length=2000)
    adopted_by: str = Field(max_length=64)
    adopted_by_name: str = Field(default="", max_length=200)
    adopted_at: datetime = Field(default_factory=utcnow, index=True)


def adopted_rule_set(session: Session) -> PriorityRuleSet | None:
    """The rule set adopted last, if any was."""
    query = select(PriorityRuleSet).order_by(col(PriorityRuleSet.adopted_at).desc()).limit(1)
    return session.exec(query).first()


class InformationRequest(SQLModel, table=True):
    __tablename__ = "information_requests"
    # The deadline ticker's reminder query.
    __table_args__ = (Index("ix_information_requests_reminders", "status", "reminder_on"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    case_id: str = Field(max_length=36, index=True)
    question: str
    asked_by_side: str = Field(max_length=2)
    asked_by_id: str = Field(max_length=36)
    asked_at: datetime = Field(default_factory=utcnow)
    from_state: str = Field(max_length=30)
    due: date
    reminder_on: date | None = None
    lapse_on: date
    reminded_at: datetime | None = None
    status: str = Field(default="open", max_length=20)
    answer: str | None = None
    answered_at: datetime | None = None
    document_ids: list[str] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False)
    )


class CaseDocument(SQLModel, table=True):
    """A document's metadata as intake reported it; the bytes stay with intake."""

    __tablename__ = "documents"

    id: str = Field(primary_key=True, max_length=36)
    case_id: str = Field(max_length=36, index=True)
    kind: str = Field(max_length=40)
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=120)
    size: int
    sha256: str = Field(max_length=64)
    shareable: bool = False
    uploaded_at: datetime = Field(default_factory=utcnow)


class Note(SQLModel, table=True):
    __tablename__ = "notes"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    case_id: str = Field(max_length=36, index=True)
    author_id: str = Field(max_length=36)
    author_name: str = Field(max_length=200)
    author_side: str = Field(max_length=2)
    visibility: str = Field(max_length=5)  # joint | eu | cn
    text: str
    created_at: datetime = Field(default_factory=utcnow)


class Proposal(SQLModel, table=True):
    """An action the protocol says needs a countersignature, as proposed (four eyes).

    `params` are the validated parameters (JSON); the action takes effect with them when
    countersigned. `status`: pending, countersigned, rejected, withdrawn, or superseded (the
    case moved on before anyone countersigned).
    """

    __tablename__ = "proposals"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    case_id: str = Field(max_length=36, index=True)
    action: str = Field(max_length=40)
    params: dict[str, Any] = Field(
        default_factory=empty_dict, sa_column=Column(JSON, nullable=False)
    )
    side: str = Field(max_length=2)
    proposed_by_id: str = Field(max_length=36)
    proposed_by_role: str = Field(max_length=20)
    proposed_by_name: str = Field(default="", max_length=200)
    proposed_at: datetime
    status: str = Field(default="pending", max_length=20)
    closed_by_id: str | None = Field(default=None, max_length=64)
    closed_at: datetime | None = None


class PriorityList(SQLModel, table=True):
    __tablename__ = "priority_lists"

    number: int | None = Field(default=None, primary_key=True)
    issued_by: str = Field(max_length=36)
    issued_at: datetime = Field(default_factory=utcnow)
    case_ids: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))


class LicenceRecord(SQLModel, table=True):
    __tablename__ = "licences"

    number: str = Field(primary_key=True, max_length=64)
    case_id: str = Field(max_length=36, index=True)
    type: str = Field(max_length=20)
    valid_from: date
    valid_until: date
    quantity_basis: str = Field(max_length=10)
    lines: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    revoked_on: date | None = None
    issued_at: datetime = Field(default_factory=utcnow)
    issued_by: str = Field(max_length=36)


class ShipmentRecord(SQLModel, table=True):
    __tablename__ = "shipments"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    licence_number: str = Field(max_length=64, index=True)
    shipped_on: date
    lines: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    recorded_by: str = Field(max_length=36)
    recorded_at: datetime = Field(default_factory=utcnow)


class AuditRecord(SQLModel, table=True):
    """An audit entry as stored; never updated or deleted (hash chain per case)."""

    __tablename__ = "audit_entries"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: str = Field(primary_key=True, max_length=36)
    case_id: str = Field(max_length=36, index=True)
    seq: int
    actor_id: str = Field(max_length=64)
    actor_side: str = Field(max_length=10)
    actor_role: str | None = Field(default=None, max_length=20)
    action: str = Field(max_length=40)
    at: datetime
    from_state: str | None = Field(default=None, max_length=30)
    to_state: str | None = Field(default=None, max_length=30)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    # Random 256-bit salts (hex) of the EU's and CN's view commitments: a side is shown its
    # own, never the other's (PROTOCOL.md visibility; docs/review.md, "Audit").
    salt_eu: str = Field(max_length=64)
    salt_cn: str = Field(max_length=64)


class AuditCheckpoint(SQLModel, table=True):
    """A signed tree head over one side's view heads, with the leaves it was computed from.

    The leaves are kept so that an inclusion proof can be given for any case; they prove
    nothing by themselves (the database is not trusted): only the signed root does.
    """

    __tablename__ = "audit_checkpoints"

    number: int = Field(primary_key=True)
    side: str = Field(primary_key=True, max_length=2)
    tree_size: int
    root_hash: str = Field(max_length=64)
    issued_at: datetime
    key_id: str = Field(max_length=16)
    signature: str = Field(max_length=128)
    # [[case_id, seq, head], ...] in case-id order: the tree's leaves.
    leaves: list[Any] = Field(sa_column=Column(JSON, nullable=False))


class Breach(SQLModel, table=True):
    __tablename__ = "breaches"
    __table_args__ = (UniqueConstraint("case_id", "state", "limit_name", "due"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(max_length=36, index=True)
    state: str = Field(max_length=30)
    limit_name: str = Field(max_length=20)
    due: date
    recorded_at: datetime = Field(default_factory=utcnow)


class CaseCount(SQLModel, table=True):
    """How many cases there are per state, tier, whether China has them and whether their
    production stops before their expected decision date.

    The queue's `total` and the EU metrics' `stopping_before_decision` are read from here
    instead of counting up to a million rows on every request. Kept exact in the transaction
    that changes the cases (services/review/projection.py).
    """

    __tablename__ = "case_counts"

    state: str = Field(primary_key=True, max_length=30)
    tier: str = Field(primary_key=True, max_length=2)
    sent_to_cn: bool = Field(primary_key=True)
    # domain/priority.py: stops_before_decision(production_stop_date, expected_decision_date).
    stops_before_decision: bool = Field(default=False, primary_key=True)
    cases: int = 0


class CaseFact(SQLModel, table=True):
    """One case reduced to what the metrics need (services/review/metrics/projection.py).

    Written in the transaction that moves the case (projection.note_change / note_breach,
    called by casework), so the aggregates below always agree with the cases and their audit
    trail.
    """

    __tablename__ = "case_facts"

    case_id: str = Field(primary_key=True, max_length=36)
    state: str = Field(max_length=30)
    opened_on: date
    first_on: date | None = None  # UTC date of the first state change (the `open` entry)
    last_state: str | None = Field(default=None, max_length=30)
    last_on: date | None = None
    outcome: str | None = Field(default=None, max_length=30)
    decided_on: date | None = None
    total_days: int | None = None
    stage_days: dict[str, int] = Field(
        default_factory=empty_dict, sa_column=Column(JSON, nullable=False)
    )
    groups: dict[str, list[str]] = Field(
        default_factory=empty_dict, sa_column=Column(JSON, nullable=False)
    )
    # [recorded UTC date (ISO), stage, limit] per row of `breaches`.
    breaches: list[list[str]] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False)
    )


class MetricCount(SQLModel, table=True):
    """How many cases contribute each (group, measure, working days) per day and per month.

    `grain` is `d` (day = the date) or `m` (day = the first of the month): a period is read
    as its whole months plus the days at either end. `grouping` `*` (value empty) is all
    cases; `cn:*` and `cn:<grouping>` count only what China may see (metrics/facts.py).
    `measure` is an outcome (`days` = total working days), `stage:<state>` (`days` = working
    days in that stage), `submitted` (by opening date) or `breach:<stage>:<limit>` (by
    recording date).
    """

    __tablename__ = "metric_counts"

    grouping: str = Field(primary_key=True, max_length=20)
    grain: str = Field(primary_key=True, max_length=1)
    day: date = Field(primary_key=True)
    value: str = Field(primary_key=True)
    measure: str = Field(primary_key=True)
    days: int = Field(primary_key=True)
    cases: int = 0


class MetricMember(SQLModel, table=True):
    """Cases per group value now: open ones by state and first-state-change date, the rest
    under state '' (so every group value with a case is listed, and the backlog's age bands
    are computed from `since` on the day of the request)."""

    __tablename__ = "metric_members"

    grouping: str = Field(primary_key=True, max_length=20)
    value: str = Field(primary_key=True)
    state: str = Field(primary_key=True, max_length=30)
    since: date = Field(primary_key=True)
    cases: int = 0


REVIEW_TABLES = (
    "cases",
    "case_counts",
    "case_facts",
    "metric_counts",
    "metric_members",
    "information_requests",
    "documents",
    "notes",
    "proposals",
    "priority_lists",
    "priority_rule_sets",
    "licences",
    "shipments",
    "audit_entries",
    "audit_checkpoints",
    "breaches",
    "digests",
    *OUTBOX_TABLES,
)


# A consumer reads a whole read's cases at once (`load_cases`); a case opened earlier in the
# same transaction is found before it is written (`add_case`).
_CASES_BY_APPLICATION = RowsByKey(Case, "application_id", "review.cases_by_application")


def case_by_application(session: Session, application_id: str) -> Case | None:
    """The application's case, including one opened or loaded earlier in this transaction."""
    return _CASES_BY_APPLICATION.get(session, application_id)


def load_cases(session: Session, application_ids: list[str]) -> None:
    """Read the cases of many applications in one query, for `case_by_application`."""
    _CASES_BY_APPLICATION.load(session, application_ids)


def add_case(session: Session, case: Case) -> None:
    """Stage a new case; `case_by_application` finds it before it is written."""
    _CASES_BY_APPLICATION.add(session, case)


def requests_of(session: Session, case_id: str) -> list[InformationRequest]:
    query = (
        select(InformationRequest)
        .where(InformationRequest.case_id == case_id)
        .order_by(col(InformationRequest.asked_at))
    )
    return list(session.exec(query).all())


def open_request(session: Session, case_id: str) -> InformationRequest | None:
    query = select(InformationRequest).where(
        InformationRequest.case_id == case_id, InformationRequest.status == "open"
    )
    return session.exec(query).first()


def documents_of(session: Session, case_id: str) -> list[CaseDocument]:
    query = (
        select(CaseDocument)
        .where(CaseDocument.case_id == case_id)
        .order_by(col(CaseDocument.uploaded_at))
    )
    return list(session.exec(query).all())


def notes_of(session: Session, case_id: str) -> list[Note]:
    query = select(Note).where(Note.case_id == case_id).order_by(col(Note.created_at))
    return list(session.exec(query).all())


def audit_of(session: Session, case_id: str) -> list[AuditRecord]:
    query = select(AuditRecord).where(AuditRecord.case_id == case_id).order_by(col(AuditRecord.seq))
    return list(session.exec(query).all())


def pending_proposal(session: Session, case: Case) -> Proposal | None:
    """The case's proposal awaiting countersignature, read afresh (a concurrent writer may
    have closed it since the session last read it)."""
    if case.pending_proposal_id is None:
        return None
    return session.get(Proposal, case.pending_proposal_id, populate_existing=True)


def licence_of(session: Session, case_id: str) -> LicenceRecord | None:
    return session.exec(select(LicenceRecord).where(LicenceRecord.case_id == case_id)).first()


def shipments_of(session: Session, number: str) -> list[ShipmentRecord]:
    query = (
        select(ShipmentRecord)
        .where(ShipmentRecord.licence_number == number)
        .order_by(col(ShipmentRecord.recorded_at))
    )
    return list(session.exec(query).all())


class DigestRun(SQLModel, table=True):
    """One official's daily digest of one day: claimed before it is sent, so that it goes out
    once however many replicas (or operators) run the digest (services/review/digest.py)."""

    __tablename__ = "digests"

    official_id: str = Field(primary_key=True, max_length=36)
    day: date = Field(primary_key=True)
    # Who holds the claim since when; None: nobody (a failed send released it for a retry).
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
