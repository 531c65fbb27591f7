"""Intake's service layer: what applicants do with their applications, beyond HTTP.

Registering an application, its documents and their limits, answers and withdrawals. The
functions take the engine and plain values and raise the errors of `services.intake.errors`;
the routes in `services.intake.api` parse, call them and render, and `install_errors` there
turns the errors into problem details in one place.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

from pydantic import BaseModel
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.intake import domain
from services.intake.domain import References
from services.intake.errors import (
    EmptyDocument,
    IntakeError,
    InvalidField,
    NotFound,
    NumberRegistered,
    StateConflict,
    StorageLimit,
    UnsupportedDocument,
)
from services.intake.settings import IntakeSettings
from services.intake.store import (
    Application,
    Document,
    InformationRequest,
    NumberTaken,
    add_timeline,
    company_document_bytes,
    document_totals,
    documents_of,
    holder_of_number,
    list_applications,
    new_id,
    own_application,
    register_application,
    requests_of,
    timeline_of,
)
from services.intake.views import (
    SOURCE,
    ApplicationSummary,
    ApplicationView,
    DocumentView,
    EarlierRequest,
    InformationRequestView,
    NewApplication,
    TimelineView,
    submitted_event_fields,
)
from shared.db import session_scope, snapshot_session, utcnow
from shared.directory import Principal
from shared.documents import DocumentStore, download_name
from shared.events import (
    ApplicationWithdrawn,
    DocumentAdded,
    DocumentDeleted,
    DocumentRef,
    InformationAnswered,
    new_event,
)
from shared.outbox import add_event
from shared.rawpg import RawConnections

Part = TypeVar("Part", Document, InformationRequest)

# --- applications ----------------------------------------------------------------------------


def summary(app: Application) -> ApplicationSummary:
    return ApplicationSummary.model_validate(app, from_attributes=True)


def application_view(session: Session, app: Application) -> ApplicationView:
    return ApplicationView(
        **summary(app).model_dump(),
        point_of_contact=app.point_of_contact,
        information_requests=[
            InformationRequestView.model_validate(r, from_attributes=True)
            for r in requests_of(session, app.id)
        ],
        documents=[
            DocumentView.model_validate(d, from_attributes=True)
            for d in documents_of(session, app.id)
        ],
        licence=app.licence,
        decision=app.decision,
        timeline=[
            TimelineView.model_validate(t, from_attributes=True)
            for t in timeline_of(session, app.id)
        ],
        application=app.body,
    )


def register(
    engine: Engine,
    writer: RawConnections | None,
    references: References,
    applicant: Principal,
    content: dict[str, Any],
    idempotency_key: str | None,
    fingerprint: str,
) -> tuple[NewApplication, tuple[int, str] | EarlierRequest]:
    """Write a new application and its `application.submitted` event (the hot path: its SQL
    is `store.register_application`'s, and the caller runs this in the request's one thread
    hop together with the credential check)."""
    new = NewApplication(
        id=new_id(),
        company_id=str(applicant.company_id),
        content=content,
        now=utcnow(),
        event_id=str(uuid.uuid4()),
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )
    try:
        written = register_application(engine, writer, new, submitted_event_fields(new), references)
    except NumberTaken:
        raise _registered_already(
            engine, new.company_id, content["mofcom_application_number"]
        ) from None
    return new, written


def submit(
    engine: Engine,
    writer: RawConnections | None,
    references: References,
    applicant: Principal,
    content: dict[str, Any],
    idempotency_key: str | None,
    fingerprint: str,
) -> tuple[NewApplication, tuple[int, str] | EarlierRequest]:
    """`register`, as the API and the portal submit: a race with a request of the same
    Idempotency-Key is tried once more, so the loser replays the winner's answer."""
    for attempt in range(2):
        try:
            return register(
                engine, writer, references, applicant, content, idempotency_key, fingerprint
            )
        except IntegrityError:
            # Two requests with the same key raced: the key's row is the winner's now.
            if idempotency_key is None:
                raise
        except NumberRegistered:
            # Racing with the same key, the loser may meet the number's index before the
            # key's: once more, and the key (if the winner's) replays the winner's answer.
            if idempotency_key is None or attempt:
                raise
    raise StateConflict("The request could not be completed; retry with the same Idempotency-Key.")


def _registered_already(engine: Engine, company_id: str, mofcom_number: str) -> StateConflict:
    with Session(engine) as session:
        holder = holder_of_number(session, company_id, mofcom_number)
    if holder is None:
        # Released between the refusal and this read (withdrawn meanwhile): try again.
        return StateConflict("The request could not be completed; retry it.")
    return NumberRegistered(mofcom_number, holder.reference, holder.status)


def replay(engine: Engine, earlier: EarlierRequest, fingerprint: str) -> ApplicationView:
    """The application an earlier request with the same Idempotency-Key registered."""
    if earlier.fingerprint != fingerprint:
        raise StateConflict(
            "This Idempotency-Key was used for a different application body.",
            kind="idempotency-key-reused",
        )
    with Session(engine) as session:
        app = session.get(Application, earlier.application_id)
        if app is None:
            raise NotFound("application")
        return application_view(session, app)


def applications(
    engine: Engine, company_id: str, status: str | None, after: int | None, limit: int
) -> list[Application]:
    """A page of the company's applications, newest first (one more than asked: is there more?)."""
    with Session(engine) as session:
        return list_applications(session, company_id, status, after, limit)


def application(engine: Engine, company_id: str, application_id: str) -> ApplicationView:
    """The application, its requests, documents and timeline as of one moment."""
    with snapshot_session(engine) as session:
        app = own_application(session, company_id, application_id)
        if app is None:
            raise NotFound("application")
        return application_view(session, app)


def _undecided(session: Session, company_id: str, application_id: str, refusal: str) -> Application:
    """The company's application if it is not decided yet; `refusal` names why not otherwise
    (`{status}` in it becomes the application's status)."""
    app = own_application(session, company_id, application_id)
    if app is None:
        raise NotFound("application")
    if domain.is_terminal(app.status):
        raise StateConflict(refusal.format(status=app.status))
    return app


def _part_of(
    session: Session, company_id: str, application_id: str, model: type[Part], part_id: str
) -> tuple[Application, Part]:
    """The company's application and one of its documents or requests; 404 if either is
    absent, another company's, or the part another application's."""
    app = own_application(session, company_id, application_id)
    part = session.get(model, part_id)
    if app is None or part is None or part.application_id != app.id:
        raise NotFound("document" if model is Document else "information request")
    return app, part


def _about(app: Application) -> dict[str, str]:
    """The fields every intake event's data starts with."""
    return {"application_id": app.id, "reference": app.reference, "company_id": app.company_id}


def _announce(
    session: Session,
    app: Application,
    event_type: str,
    data: BaseModel,
    at: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """The event into the outbox and its step into the applicant's timeline, in the caller's
    transaction."""
    event = new_event(SOURCE, event_type, app.id, data)
    add_event(session, event)
    add_timeline(session, app, event.id, at, event_type, detail)


def _rowcount(result: object) -> int:
    # session.execute(update(...)) returns a CursorResult; its static type does not say so.
    count = getattr(result, "rowcount", 0)
    return int(count) if isinstance(count, int) else 0


def _lock(session: Session, application_id: str) -> None:
    """Write to the application's row: it locks the row (PostgreSQL) or the database (SQLite,
    whose reads take no lock), so concurrent changes to its documents are taken one at a time
    (uploads cannot pass the limits together, finding F16; an answer cannot name a document
    being deleted)."""
    session.execute(
        update(Application)
        .where(col(Application.id) == application_id)
        .values(updated_at=Application.updated_at)
    )


# --- documents -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedUpload:
    sha256: str
    size: int
    content_type: str


@dataclass(frozen=True)
class DocumentFile:
    """Which stored bytes a document is and how to hand them out."""

    sha256: str
    content_type: str
    filename: str


def add_document(
    engine: Engine,
    settings: IntakeSettings,
    store: DocumentStore,
    company_id: str,
    application_id: str,
    upload: BinaryIO,
    filename: str | None,
    kind: domain.DocumentKind,
    shareable: bool,
) -> DocumentView:
    """Store an uploaded document under the limits and announce `application.document_added`.

    `upload` is a seekable file at its start (FastAPI's spooled upload): it is read once to
    check it, then again into the store."""
    with Session(engine) as session:
        refusal = "The application is {status}; it takes no more documents."
        app = _undecided(session, company_id, application_id, refusal)
        room = _room_for_documents(session, settings, company_id, app.id)
    # Never more is read than the limits leave room for (413 as soon as it is exceeded).
    checked = _check_upload(upload, min(room, settings.max_upload_bytes))
    upload.seek(0)
    store.put(checked.sha256, upload)
    with session_scope(engine) as session:
        # The limits again, after the lock: concurrent uploads cannot pass them together.
        _lock(session, application_id)
        app = session.exec(select(Application).where(Application.id == application_id)).one()
        try:
            if checked.size > _room_for_documents(session, settings, company_id, app.id):
                raise _too_much(settings)
        except IntakeError:
            _forget_unused(session, store, checked.sha256)
            raise
        document = Document(
            application_id=app.id,
            kind=kind.value,
            filename=domain.safe_filename(filename),
            content_type=checked.content_type,
            size=checked.size,
            sha256=checked.sha256,
            shareable=shareable,
        )
        session.add(document)
        session.flush()
        ref = DocumentRef.model_validate(document, from_attributes=True)
        _announce(
            session,
            app,
            "application.document_added",
            DocumentAdded(**_about(app), document=ref),
            document.uploaded_at,
            {"document_id": document.id, "kind": document.kind, "filename": document.filename},
        )
        return DocumentView.model_validate(document, from_attributes=True)


def document_file(
    engine: Engine, company_id: str, application_id: str, document_id: str
) -> DocumentFile:
    with Session(engine) as session:
        _app, document = _part_of(session, company_id, application_id, Document, document_id)
    return DocumentFile(
        sha256=document.sha256,
        content_type=document.content_type,
        filename=download_name(document.filename, document.content_type),
    )


def delete_document(
    engine: Engine,
    store: DocumentStore,
    company_id: str,
    application_id: str,
    document_id: str,
) -> None:
    """Delete a document the case may still do without, and announce
    `application.document_deleted`; its bytes go once no document refers to them."""
    with session_scope(engine) as session:
        app = own_application(session, company_id, application_id)
        if app is None:
            raise NotFound("document")
        # Locked before the checks: an answer naming the document, or another deletion,
        # waits for this one (or this one for it) and then sees its outcome.
        _lock(session, app.id)
        session.refresh(app)
        document = session.get(Document, document_id)
        if document is None or document.application_id != app.id:
            raise NotFound("document")
        if domain.is_terminal(app.status):
            raise StateConflict(
                f"The application is {app.status}; its documents are kept as they were.",
                kind="document-kept",
            )
        answers = [r for r in requests_of(session, app.id) if document.id in r.document_ids]
        if answers:
            raise StateConflict(
                "An answer to a request for information refers to this document; "
                "it is kept with the answer.",
                kind="document-referenced",
            )
        now = utcnow()
        sha256 = document.sha256
        session.delete(document)
        _announce(
            session,
            app,
            "application.document_deleted",
            DocumentDeleted(**_about(app), document_id=document_id, deleted_at=now),
            now,
            {"document_id": document_id, "filename": document.filename},
        )
        session.flush()
        shared_bytes = session.exec(
            select(Document.id).where(Document.sha256 == sha256).limit(1)
        ).first()
    # After the commit, so a deletion rolled back still finds its bytes. (An upload of the
    # same bytes to another application, stored but not yet committed at this moment, would
    # lose them: the bytes have no lock of their own.)
    if shared_bytes is None:
        store.delete(sha256)


def _room_for_documents(
    session: Session, settings: IntakeSettings, company_id: str, application_id: str
) -> int:
    """Bytes one more document of the application may have under the limits; 413 if none."""
    count, application_bytes = document_totals(session, application_id)
    if count >= settings.max_documents_per_application:
        raise StorageLimit(
            f"An application holds at most {settings.max_documents_per_application} documents.",
            kind="document-limit",
        )
    room = min(
        settings.max_application_document_bytes - application_bytes,
        settings.upload_quota_bytes - company_document_bytes(session, company_id),
    )
    if room <= 0:
        raise _too_much(settings)
    return room


def _forget_unused(session: Session, store: DocumentStore, sha256: str) -> None:
    """Remove stored bytes no document refers to (an upload refused after it was stored)."""
    if session.exec(select(Document.id).where(Document.sha256 == sha256).limit(1)).first() is None:
        store.delete(sha256)


def _too_much(settings: IntakeSettings) -> StorageLimit:
    return StorageLimit(
        "The documents would exceed the storage limits: "
        f"{settings.max_application_document_bytes} bytes an application, "
        f"{settings.upload_quota_bytes} bytes a company.",
        kind="storage-quota",
    )


def _check_upload(upload: BinaryIO, limit: int) -> CheckedUpload:
    """Read the upload through, checking its size, type and structure; its digest."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    text = domain.TextCheck()
    while chunk := upload.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise StorageLimit(f"This document may have at most {limit} bytes.")
        if len(head) < 8192:
            head += chunk[: 8192 - len(head)]
        digest.update(chunk)
        text.feed(chunk)
    text.feed(b"", final=True)
    if size == 0:
        raise EmptyDocument()
    content_type = domain.sniff_content_type(head)
    if content_type is None:
        raise UnsupportedDocument()
    if content_type == "text/plain" and not text.is_text:
        raise UnsupportedDocument("starts as text but is not UTF-8 text throughout")
    if problem := domain.structure_problem(upload, content_type):
        raise UnsupportedDocument(problem)
    return CheckedUpload(sha256=digest.hexdigest(), size=size, content_type=content_type)


# --- answers and withdrawals -----------------------------------------------------------------


def answer(
    engine: Engine,
    company_id: str,
    application_id: str,
    request_id: str,
    text: str,
    document_ids: list[str],
) -> ApplicationView:
    """Answer an open request for information and announce `application.information_answered`."""
    with session_scope(engine) as session:
        app, info = _part_of(session, company_id, application_id, InformationRequest, request_id)
        if info.status != "open":
            raise StateConflict(f"This request is {info.status}; it cannot be answered.")
        if document_ids:
            # The documents named must not be deleted meanwhile (see `delete_document`).
            _lock(session, app.id)
        known = set(
            session.exec(select(Document.id).where(Document.application_id == app.id)).all()
        )
        if any(d not in known for d in document_ids):
            raise InvalidField("document_ids", "not documents of this application")
        now = utcnow()
        # Check and write in one statement: of concurrent answers exactly one finds the
        # request open (PostgreSQL re-reads the row after the winner's commit; SQLite runs
        # one writer at a time), so one answer is stored and sent (red-team finding F11).
        claimed = session.execute(
            update(InformationRequest)
            .where(col(InformationRequest.id) == info.id, col(InformationRequest.status) == "open")
            .values(
                status="answered",
                answer=text,
                answered_at=now,
                document_ids=list(document_ids),
            )
        )
        if _rowcount(claimed) != 1:
            raise StateConflict("This request was answered meanwhile; it cannot be answered again.")
        session.refresh(info)
        answered = InformationAnswered(
            **_about(app),
            request_id=info.id,
            answer=text,
            document_ids=document_ids,
            answered_at=now,
        )
        _announce(
            session, app, "application.information_answered", answered, now, {"request_id": info.id}
        )
        session.flush()
        return application_view(session, app)


def withdraw(
    engine: Engine, company_id: str, application_id: str, reason: str | None
) -> ApplicationView:
    """Withdraw an undecided application and announce `application.withdrawn`."""
    with session_scope(engine) as session:
        app = _undecided(
            session, company_id, application_id, "The application is {status} already."
        )
        now = utcnow()
        # Check and write in one statement, so of concurrent withdrawals (or a withdrawal
        # and a decision projected meanwhile) exactly one moves the status (finding F11).
        claimed = session.execute(
            update(Application)
            .where(
                col(Application.id) == app.id,
                col(Application.status).not_in(domain.TERMINAL_STATUSES),
            )
            .values(status="withdrawn", status_changed_at=now, updated_at=now, mofcom_released=True)
        )
        if _rowcount(claimed) != 1:
            session.rollback()
            decided = session.get(Application, app.id)
            status = decided.status if decided is not None else "decided"
            raise StateConflict(f"The application is {status} already.")
        session.refresh(app)
        withdrawn = ApplicationWithdrawn(**_about(app), withdrawn_at=now, reason=reason)
        _announce(session, app, "application.withdrawn", withdrawn, now)
        session.flush()
        return application_view(session, app)
