"""Intake's tables and queries: applications, the applicant's projection of review, documents."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from shared.db import utcnow
from shared.outbox import OUTBOX_TABLES


def new_id() -> str:
    return str(uuid.uuid4())


class ReferenceNumber(SQLModel, table=True):
    """One row per application: its autoincrement id is the number in the human reference."""

    __tablename__ = "reference_numbers"

    id: int | None = Field(default=None, primary_key=True)


class Application(SQLModel, table=True):
    """An application as the applicant registered it, with the applicant's view of its case."""

    __tablename__ = "applications"
    __table_args__ = (
        Index("ix_applications_company_seq", "company_id", "number"),
        Index("ix_applications_company_status_seq", "company_id", "status", "number"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    number: int = Field(unique=True)
    reference: str = Field(max_length=20, unique=True)
    company_id: str = Field(max_length=36)
    status: str = Field(max_length=30)
    status_changed_at: datetime = Field(default_factory=utcnow)
    mofcom_application_number: str = Field(max_length=64)
    licence_type: str = Field(max_length=20)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    submitted_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    case_id: str | None = Field(default=None, max_length=36)
    priority_tier: str | None = Field(default=None, max_length=2)
    expected_decision_date: date | None = None
    point_of_contact: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    licence: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    decision: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class IdempotencyRecord(SQLModel, table=True):
    """Which application a company's Idempotency-Key produced, and for which body."""

    __tablename__ = "idempotency_keys"

    company_id: str = Field(primary_key=True, max_length=36)
    key: str = Field(primary_key=True, max_length=255)
    fingerprint: str = Field(max_length=64)
    application_id: str = Field(max_length=36)
    created_at: datetime = Field(default_factory=utcnow)


class Document(SQLModel, table=True):
    __tablename__ = "documents"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    application_id: str = Field(max_length=36, index=True)
    kind: str = Field(max_length=40)
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=120)
    size: int
    sha256: str = Field(max_length=64)
    shareable: bool = False
    uploaded_at: datetime = Field(default_factory=utcnow)


class InformationRequest(SQLModel, table=True):
    """A request for information as review raised it; the id is review's."""

    __tablename__ = "information_requests"

    id: str = Field(primary_key=True, max_length=36)
    application_id: str = Field(max_length=36, index=True)
    question: str
    due: date
    status: str = Field(default="open", max_length=20)
    requested_at: datetime = Field(default_factory=utcnow)
    answer: str | None = None
    document_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    answered_at: datetime | None = None


class TimelineEntry(SQLModel, table=True):
    """One applicant-visible step in an application's history."""

    __tablename__ = "timeline"
    __table_args__ = (UniqueConstraint("application_id", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    application_id: str = Field(max_length=36, index=True)
    event_id: str = Field(max_length=64)
    at: datetime
    type: str = Field(max_length=60)
    status: str | None = Field(default=None, max_length=30)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


INTAKE_TABLES = (
    "reference_numbers",
    "applications",
    "idempotency_keys",
    "documents",
    "information_requests",
    "timeline",
    *OUTBOX_TABLES,
)


def own_application(session: Session, company_id: str, application_id: str) -> Application | None:
    """The application if it belongs to the company; another company's is as if absent."""
    application = session.get(Application, application_id)
    if application is None or application.company_id != company_id:
        return None
    return application


def list_applications(
    session: Session, company_id: str, status: str | None, before: int | None, limit: int
) -> list[Application]:
    query = select(Application).where(Application.company_id == company_id)
    if status:
        query = query.where(Application.status == status)
    if before is not None:
        query = query.where(col(Application.number) < before)
    query = query.order_by(col(Application.number).desc()).limit(limit)
    return list(session.exec(query).all())


def requests_of(session: Session, application_id: str) -> list[InformationRequest]:
    query = (
        select(InformationRequest)
        .where(InformationRequest.application_id == application_id)
        .order_by(col(InformationRequest.requested_at))
    )
    return list(session.exec(query).all())


def documents_of(session: Session, application_id: str) -> list[Document]:
    query = (
        select(Document)
        .where(Document.application_id == application_id)
        .order_by(col(Document.uploaded_at))
    )
    return list(session.exec(query).all())


def timeline_of(session: Session, application_id: str) -> list[TimelineEntry]:
    query = (
        select(TimelineEntry)
        .where(TimelineEntry.application_id == application_id)
        .order_by(col(TimelineEntry.at), col(TimelineEntry.id))
    )
    return list(session.exec(query).all())


def add_timeline(
    session: Session,
    application: Application,
    event_id: str,
    at: datetime,
    type_: str,
    detail: dict[str, Any] | None = None,
) -> TimelineEntry:
    entry = TimelineEntry(
        application_id=application.id,
        event_id=event_id,
        at=at,
        type=type_,
        status=application.status,
        detail=detail or {},
    )
    session.add(entry)
    return entry
