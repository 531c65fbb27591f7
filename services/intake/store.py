"""Intake's tables and queries: applications, the applicant's projection of review, documents."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any

import psycopg
from sqlalchemy import JSON, Column, Index, UniqueConstraint, false, text
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, func, select

from services.intake import domain
from services.intake.views import (
    RECEIVED,
    SUBMITTED,
    EarlierRequest,
    EventFields,
    NewApplication,
)
from shared.db import empty_dict, empty_list, utcnow
from shared.events import INTAKE_STREAM
from shared.outbox import OUTBOX_TABLES
from shared.rawpg import RawConnections, RetrySafe


def new_id() -> str:
    return str(uuid.uuid4())


LIVE_NUMBER_INDEX = "ux_applications_company_live_mofcom_number"


class NumberTaken(Exception):
    """The company holds this MOFCOM application number with another application."""


class ReferenceNumber(SQLModel, table=True):
    """One row per application: its autoincrement id is the application's number, which the
    human reference is a keyed permutation of (`domain.References`)."""

    __tablename__ = "reference_numbers"

    id: int | None = Field(default=None, primary_key=True)


class Application(SQLModel, table=True):
    """An application as the applicant registered it, with the applicant's view of its case."""

    __tablename__ = "applications"
    __table_args__ = (
        Index("ix_applications_company_seq", "company_id", "number"),
        Index("ix_applications_company_status_seq", "company_id", "status", "number"),
        # A company's MOFCOM number is registered once while it is held (domain.py,
        # RELEASING_STATUSES): the database refuses the second of two racing submissions.
        Index(
            LIVE_NUMBER_INDEX,
            "company_id",
            "mofcom_application_number",
            unique=True,
            postgresql_where=text("NOT mofcom_released"),
            sqlite_where=text("NOT mofcom_released"),
        ),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    number: int = Field(unique=True)
    reference: str = Field(max_length=20, unique=True)
    company_id: str = Field(max_length=36)
    status: str = Field(max_length=30)
    status_changed_at: datetime = Field(default_factory=utcnow)
    mofcom_application_number: str = Field(max_length=64)
    # Set once the application ends without a decision on its merits; never unset (a
    # withdrawal found too late returns the status to the decision, not the number).
    mofcom_released: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
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
    document_ids: list[str] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False)
    )
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
    detail: dict[str, Any] = Field(
        default_factory=empty_dict, sa_column=Column(JSON, nullable=False)
    )


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


def holder_of_number(session: Session, company_id: str, mofcom_number: str) -> Application | None:
    """The company's application that holds this MOFCOM number, if one does."""
    query = select(Application).where(
        Application.company_id == company_id,
        Application.mofcom_application_number == mofcom_number,
        col(Application.mofcom_released).is_(False),
    )
    return session.exec(query).first()


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


def document_totals(session: Session, application_id: str) -> tuple[int, int]:
    """How many documents an application has, and their bytes."""
    count, total = session.execute(
        sa_select(func.count(), func.coalesce(func.sum(Document.size), 0)).where(
            col(Document.application_id) == application_id
        )
    ).one()
    return int(count), int(total)


def company_document_bytes(session: Session, company_id: str) -> int:
    """The bytes of all of a company's documents (its storage quota's use)."""
    total = session.execute(
        sa_select(func.coalesce(func.sum(Document.size), 0))
        .select_from(Document)
        .join(Application, col(Application.id) == col(Document.application_id))
        .where(col(Application.company_id) == company_id)
    ).scalar_one()
    return int(total)


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


# --- registering an application: the hot path of POST /v1/applications -------------------------
#
# A new application is five rows written in one transaction: its reference number, the
# application, its first timeline entry, the application.submitted event in the outbox and,
# with an Idempotency-Key, the key. Through the ORM that was a unit-of-work flush and six
# statements (one round trip each); here it is plain SQL, and on PostgreSQL (on the plain psycopg
# connections of shared/rawpg.py, with no ping per checkout) two round trips:
# (1) BEGIN, the reference number and the idempotency lookup in one statement; (2) every row
# in one statement (data-modifying CTEs) and COMMIT, sent together in psycopg's pipeline mode.


_PG_NUMBER = "INSERT INTO reference_numbers DEFAULT VALUES RETURNING id, NULL, NULL"
# The number is drawn only when the key is new: a replay leaves no gap in the references.
_PG_NUMBER_AND_KEY = (
    "WITH k AS (SELECT fingerprint, application_id FROM idempotency_keys"
    " WHERE company_id = %(company_id)s AND key = %(key)s),"
    " n AS (INSERT INTO reference_numbers SELECT WHERE NOT EXISTS (SELECT FROM k) RETURNING id)"
    " SELECT (SELECT id FROM n), k.fingerprint, k.application_id"
    " FROM (SELECT 1) AS one LEFT JOIN k ON true"
)
_PG_APPLICATION = (
    "WITH a AS ("
    " INSERT INTO applications (id, number, reference, company_id, status, status_changed_at,"
    " mofcom_application_number, licence_type, body, submitted_at, updated_at)"
    " VALUES (%(id)s, %(number)s, %(reference)s, %(company_id)s, %(status)s, %(now)s,"
    " %(mofcom)s, %(licence_type)s, %(body)s::json, %(now)s, %(now)s)),"
    " o AS ("
    " INSERT INTO outbox (event_id, stream, event_type, fields_json, created_at)"
    " VALUES (%(event_id)s, %(stream)s, %(event_type)s, %(fields_json)s, %(now)s))"
)
_PG_TIMELINE = (
    " INSERT INTO timeline (application_id, event_id, at, type, status, detail)"
    " VALUES (%(id)s, %(event_id)s, %(now)s, %(timeline_type)s, %(status)s, '{}'::json)"
)
_PG_KEY = (
    ", k AS ("
    " INSERT INTO idempotency_keys (company_id, key, fingerprint, application_id, created_at)"
    " VALUES (%(company_id)s, %(key)s, %(fingerprint)s, %(id)s, %(now)s))"
)
# Every row of a new application in one statement (with or without an Idempotency-Key).
_PG_ROWS = _PG_APPLICATION + _PG_TIMELINE
_PG_ROWS_AND_KEY = _PG_APPLICATION + _PG_KEY + _PG_TIMELINE


def register_application(
    engine: Engine,
    connections: RawConnections | None,
    new: NewApplication,
    event_fields: EventFields,
    references: domain.References,
) -> tuple[int, str] | EarlierRequest:
    """Write a new application and its event in one transaction; (number, reference).

    With an Idempotency-Key already used by the company, nothing is written and the earlier
    request is returned. Two requests racing with one key: the loser's COMMIT fails with
    IntegrityError (the key's primary key) and the caller replays the winner's answer. A
    MOFCOM number the company holds already: NumberTaken (the unique index's refusal), with
    nothing written.
    `connections` are plain psycopg connections to the engine's database (PostgreSQL); without
    them the rows go through SQLAlchemy Core.
    """
    if connections is not None:
        return connections.run(lambda pg: _register_pg(pg, new, event_fields, references))
    return _register_core(engine, new, event_fields, references)


def _row_params(
    new: NewApplication, number: int, event_fields: EventFields, references: domain.References
) -> dict[str, Any]:
    reference = references.reference(new.now.year, number)
    return {
        "id": new.id,
        "number": number,
        "reference": reference,
        "company_id": new.company_id,
        "status": domain.INITIAL_STATUS,
        "now": new.now,
        "mofcom": new.content["mofcom_application_number"],
        "licence_type": new.content["licence_type"],
        "body": json.dumps(new.content),
        "event_id": new.event_id,
        "stream": INTAKE_STREAM,
        "event_type": SUBMITTED,
        "fields_json": event_fields(reference),
        "timeline_type": RECEIVED,
        "key": new.idempotency_key,
        "fingerprint": new.fingerprint,
    }


def _register_pg(
    pg: psycopg.Connection[Any],
    new: NewApplication,
    event_fields: EventFields,
    references: domain.References,
) -> tuple[int, str] | EarlierRequest:
    committing = False
    try:
        with pg.pipeline() as pipeline, pg.cursor() as cur:
            if new.idempotency_key is None:
                cur.execute(_PG_NUMBER)
            else:
                cur.execute(
                    _PG_NUMBER_AND_KEY, {"company_id": new.company_id, "key": new.idempotency_key}
                )
            pipeline.sync()
            row = cur.fetchone()
            assert row is not None
            number, fingerprint, application_id = row
            if application_id is not None:
                pg.rollback()
                return EarlierRequest(application_id, fingerprint)
            params = _row_params(new, number, event_fields, references)
            cur.execute(_PG_ROWS if new.idempotency_key is None else _PG_ROWS_AND_KEY, params)
            committing = True
            pg.commit()
    except psycopg.IntegrityError as exc:
        pg.rollback()
        if exc.diag.constraint_name == LIVE_NUMBER_INDEX:
            raise NumberTaken() from exc
        # The Idempotency-Key's primary key: another request with the key committed first.
        raise IntegrityError(_PG_ROWS, None, exc) from exc
    except psycopg.OperationalError as exc:
        # A connection that failed before COMMIT was sent committed nothing: safe to retry.
        if not committing:
            raise RetrySafe(exc) from exc
        raise
    return number, params["reference"]


def _register_core(
    engine: Engine, new: NewApplication, event_fields: EventFields, references: domain.References
) -> tuple[int, str] | EarlierRequest:
    """The same rows through SQLAlchemy Core (SQLite, the embedded mode)."""
    try:
        return _insert_core(engine, new, event_fields, references)
    except IntegrityError as exc:
        # SQLite names the index's columns, not the index.
        if "applications.mofcom_application_number" in str(exc.orig):
            raise NumberTaken() from exc
        raise


def _insert_core(
    engine: Engine, new: NewApplication, event_fields: EventFields, references: domain.References
) -> tuple[int, str] | EarlierRequest:
    tables = SQLModel.metadata.tables
    with engine.begin() as conn:
        if new.idempotency_key is not None:
            keys = tables["idempotency_keys"]
            earlier = conn.execute(
                sa_select(keys.c.fingerprint, keys.c.application_id).where(
                    keys.c.company_id == new.company_id, keys.c.key == new.idempotency_key
                )
            ).first()
            if earlier is not None:
                return EarlierRequest(earlier.application_id, earlier.fingerprint)
        inserted = conn.execute(tables["reference_numbers"].insert().values())
        assert inserted.inserted_primary_key is not None
        number = int(inserted.inserted_primary_key[0])
        p = _row_params(new, number, event_fields, references)
        conn.execute(
            tables["applications"].insert(),
            {
                "id": p["id"],
                "number": number,
                "reference": p["reference"],
                "company_id": p["company_id"],
                "status": p["status"],
                "status_changed_at": p["now"],
                "mofcom_application_number": p["mofcom"],
                "licence_type": p["licence_type"],
                "body": new.content,
                "submitted_at": p["now"],
                "updated_at": p["now"],
            },
        )
        conn.execute(
            tables["outbox"].insert(),
            {
                "event_id": p["event_id"],
                "stream": p["stream"],
                "event_type": p["event_type"],
                "fields_json": p["fields_json"],
                "created_at": p["now"],
            },
        )
        conn.execute(
            tables["timeline"].insert(),
            {
                "application_id": p["id"],
                "event_id": p["event_id"],
                "at": p["now"],
                "type": p["timeline_type"],
                "status": p["status"],
                "detail": {},
            },
        )
        if new.idempotency_key is not None:
            conn.execute(
                tables["idempotency_keys"].insert(),
                {
                    "company_id": p["company_id"],
                    "key": p["key"],
                    "fingerprint": p["fingerprint"],
                    "application_id": p["id"],
                    "created_at": p["now"],
                },
            )
    return number, p["reference"]
