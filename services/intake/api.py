"""Intake's HTTP routes: applicants register, document, answer and withdraw their applications."""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field, StringConstraints, TypeAdapter, ValidationError
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.intake import domain
from services.intake.settings import IntakeSettings
from services.intake.store import (
    Application,
    Document,
    InformationRequest,
    add_timeline,
    company_document_bytes,
    document_totals,
    documents_of,
    list_applications,
    new_id,
    own_application,
    register_application,
    requests_of,
    timeline_of,
)
from services.intake.views import (
    SOURCE,
    ApplicationPage,
    ApplicationSummary,
    ApplicationView,
    DocumentView,
    EarlierRequest,
    InformationRequestView,
    NewApplication,
    TimelineView,
    first_view,
    submitted_event_fields,
)
from shared.applications import ApplicationBody
from shared.db import session_scope, utcnow
from shared.directory import Principal
from shared.events import (
    ApplicationWithdrawn,
    DocumentAdded,
    DocumentRef,
    InformationAnswered,
    new_event,
)
from shared.http import (
    authenticated_applicant,
    bearer,
    current_applicant,
    page_params,
    run_blocking,
)
from shared.outbox import add_event
from shared.problems import Problem, conflict, documented_errors, invalid, not_found
from shared.text import MultilineText, text_problem

router = APIRouter(prefix="/v1", tags=["applications"], responses=documented_errors())
Applicant = Annotated[Principal, Depends(current_applicant)]


class AnswerBody(BaseModel):
    model_config = {"extra": "forbid"}

    answer: MultilineText = Field(min_length=1, max_length=20_000)
    document_ids: list[Annotated[str, Field(max_length=36)]] = Field(
        default_factory=list, max_length=50
    )


class WithdrawBody(BaseModel):
    model_config = {"extra": "forbid"}

    reason: MultilineText | None = Field(None, max_length=2000)


# --- helpers ---------------------------------------------------------------------------------


def _engine(request: Request) -> Engine:
    return request.app.state.runtime.engine


def _committed(request: Request) -> None:
    request.app.state.runtime.relay.wake()


def _summary(app: Application) -> ApplicationSummary:
    return ApplicationSummary.model_validate(app, from_attributes=True)


def _view(session: Session, app: Application) -> ApplicationView:
    return ApplicationView(
        **_summary(app).model_dump(),
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


def _rowcount(result: object) -> int:
    # session.execute(update(...)) returns a CursorResult; its static type does not say so.
    count = getattr(result, "rowcount", 0)
    return int(count) if isinstance(count, int) else 0


def _cursor(number: int) -> str:
    return base64.urlsafe_b64encode(str(number).encode()).decode().rstrip("=")


def _from_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except ValueError as exc:
        raise invalid([{"field": "cursor", "message": "not a cursor from this API"}]) from exc


def _location(app: Application) -> dict[str, str]:
    return {"Location": f"/v1/applications/{app.id}"}


# --- routes ----------------------------------------------------------------------------------


IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def submit_application(
    body: ApplicationBody,
    request: Request,
    credentials: Credentials,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    # The signature documents the route (OpenAPI); `_read_submission` reads its parameters.
    content = body.model_dump(mode="json")
    fingerprint = domain.body_fingerprint(content) if idempotency_key is not None else ""
    for _attempt in range(2):
        try:
            new, written = await run_blocking(
                _register, request, credentials, content, idempotency_key, fingerprint
            )
        except IntegrityError:
            # Two requests with the same key raced; the loser replays the winner's answer.
            if idempotency_key is None:
                raise
            continue
        if isinstance(written, EarlierRequest):
            return await run_blocking(_replay, _engine(request), written, new.fingerprint)
        _committed(request)
        _number, reference = written
        return JSONResponse(
            first_view(new, reference),
            status_code=201,
            headers={"Location": f"/v1/applications/{new.id}"},
        )
    raise conflict("The request could not be completed; retry with the same Idempotency-Key.")


def _register(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    content: dict[str, Any],
    idempotency_key: str | None,
    fingerprint: str,
) -> tuple[NewApplication, tuple[int, str] | EarlierRequest]:
    """Authenticate the applicant and write the application: one thread hop for both."""
    applicant = authenticated_applicant(request, credentials)
    new = NewApplication(
        id=new_id(),
        company_id=str(applicant.company_id),
        content=content,
        now=utcnow(),
        event_id=str(uuid.uuid4()),
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )
    written = register_application(
        _engine(request),
        request.app.state.writer,
        new,
        submitted_event_fields(new),
        request.app.state.references,
    )
    return new, written


# --- POST /v1/applications: its parameters read by hand ----------------------------------------
#
# Applications arrive faster than anything else, and FastAPI's generic request handler (solving
# the dependencies, parsing the body with json.loads, then validating the parsed value) cost a
# fifth of intake's CPU per application, with a second thread hop for the credential. This
# route reads the same parameters itself: the bearer credential, the Idempotency-Key header
# (the same bounds), and the body, parsed and validated in one pass by pydantic-core. It refuses
# what the generic handler refused, with the same problem details: malformed JSON, a body that is
# not JSON, no body. An invalid request is refused only after its credential has been checked
# (401 or 403 first), so a stranger learns nothing of the rules. The credential is checked and
# the application written in one thread hop (`_register`).

_KEY: TypeAdapter[str] = TypeAdapter(
    Annotated[str, StringConstraints(min_length=1, max_length=255)]
)


def _is_json(content_type: str | None) -> bool:
    # As FastAPI (strict): application/json or application/*+json; no content type is not JSON.
    if not content_type:
        return False
    main, _, sub = content_type.split(";", 1)[0].strip().lower().partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def _located(exc: ValidationError, *where: str) -> list[dict[str, Any]]:
    return [{**e, "loc": (*where, *e["loc"])} for e in exc.errors(include_url=False)]


async def _read_submission(request: Request) -> Response:
    credentials = await bearer(request)
    errors: list[dict[str, Any]] = []
    key = request.headers.get("idempotency-key")
    if key is not None:
        try:
            _KEY.validate_python(key)
        except ValidationError as exc:
            errors += _located(exc, "header", "Idempotency-Key")
    raw = await request.body()
    body: ApplicationBody | None = None
    try:
        if not raw:
            errors.append({"type": "missing", "loc": ("body",), "msg": "Field required"})
        elif _is_json(request.headers.get("content-type")):
            body = ApplicationBody.model_validate_json(raw)
        else:
            body = ApplicationBody.model_validate(raw)  # refused, with pydantic's own message
    except ValidationError as exc:
        errors += _located(exc, "body")
    if body is not None and body.urgency and body.urgency.production_stop_date:
        problem = domain.production_stop_problem(body.urgency.production_stop_date, utcnow().date())
        if problem is not None:
            loc = ("body", "urgency", "production_stop_date")
            errors.append({"type": "value_error", "loc": loc, "msg": problem})
    if errors or body is None:
        await run_blocking(authenticated_applicant, request, credentials)
        raise RequestValidationError(errors)
    return await submit_application(body, request, credentials, key)


class _SubmissionRoute(APIRoute):
    """The route as FastAPI documents it (OpenAPI from the endpoint's signature), with its
    requests handled by `_read_submission` instead of the generic handler."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return _read_submission


router.add_api_route(
    "/applications",
    submit_application,
    methods=["POST"],
    status_code=201,
    response_model=ApplicationView,
    summary="Register a pending MOFCOM licence application",
    responses={409: {"description": "Idempotency-Key reused with another body"}},
    route_class_override=_SubmissionRoute,
)


def _replay(engine: Engine, earlier: EarlierRequest, fingerprint: str) -> JSONResponse:
    if earlier.fingerprint != fingerprint:
        raise conflict(
            "This Idempotency-Key was used for a different application body.",
            type_="idempotency-key-reused",
        )
    with Session(engine) as session:
        app = session.get(Application, earlier.application_id)
        if app is None:
            raise not_found("application")
        view = _view(session, app)
    headers = {**_location(app), "Idempotent-Replayed": "true"}
    return JSONResponse(view.model_dump(mode="json"), status_code=201, headers=headers)


@router.get("/applications", response_model=ApplicationPage, summary="Your applications")
def list_own_applications(
    request: Request,
    applicant: Applicant,
    status: Annotated[str | None, Query(description="Only applications in this status")] = None,
    limit: Annotated[int | None, Query(description="Page size (1 to 200)")] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> ApplicationPage:
    settings = request.app.state.settings
    size = page_params(limit, settings.default_page_size, settings.max_page_size)
    if status is not None and status not in domain.STATUSES:
        raise invalid(
            [{"field": "status", "message": "must be one of " + ", ".join(domain.STATUSES)}]
        )
    with Session(_engine(request)) as session:
        rows = list_applications(
            session, str(applicant.company_id), status, _from_cursor(cursor), size + 1
        )
    more = len(rows) > size
    rows = rows[:size]
    return ApplicationPage(
        items=[_summary(r) for r in rows],
        next_cursor=_cursor(rows[-1].number) if more else None,
        limit=size,
    )


@router.get(
    "/applications/{application_id}", response_model=ApplicationView, summary="One application"
)
def get_application(application_id: str, request: Request, applicant: Applicant) -> ApplicationView:
    with Session(_engine(request)) as session:
        app = own_application(session, str(applicant.company_id), application_id)
        if app is None:
            raise not_found("application")
        return _view(session, app)


@router.post(
    "/applications/{application_id}/documents",
    status_code=201,
    response_model=DocumentView,
    summary="Upload a document (PDF, image, text or Office file)",
)
def upload_document(
    application_id: str,
    request: Request,
    applicant: Applicant,
    file: Annotated[UploadFile, File(description="The document")],
    kind: Annotated[domain.DocumentKind, Form()] = domain.DocumentKind.other,
    shareable: Annotated[bool, Form(description="May the Chinese side see it?")] = False,
) -> DocumentView:
    settings: IntakeSettings = request.app.state.settings
    engine = _engine(request)
    company_id = str(applicant.company_id)
    if file.filename and (problem := text_problem(file.filename, multiline=False)):
        raise invalid([{"field": "file", "message": f"the file name {problem}"}])
    with Session(engine) as session:
        app = own_application(session, company_id, application_id)
        if app is None:
            raise not_found("application")
        if domain.is_terminal(app.status):
            raise conflict(f"The application is {app.status}; it takes no more documents.")
        room = _room_for_documents(session, settings, company_id, app.id)
    # Never more is read than the limits leave room for (413 as soon as it is exceeded).
    stored = _store_file(
        file, Path(settings.data_dir) / "documents", min(room, settings.max_upload_bytes)
    )
    with session_scope(engine) as session:
        # The limits again, after a write to the application's row: it locks the row
        # (PostgreSQL) or the database (SQLite, whose reads take no lock), so concurrent
        # uploads to one application cannot pass the limits together (finding F16).
        session.execute(
            update(Application)
            .where(col(Application.id) == application_id)
            .values(updated_at=Application.updated_at)
        )
        app = session.exec(select(Application).where(Application.id == application_id)).one()
        try:
            if stored.size > _room_for_documents(session, settings, company_id, app.id):
                raise _too_much(settings)
        except Problem:
            _forget_unused(session, Path(settings.data_dir) / "documents", stored.sha256)
            raise
        document = Document(
            application_id=app.id,
            kind=kind.value,
            filename=domain.safe_filename(file.filename),
            content_type=stored.content_type,
            size=stored.size,
            sha256=stored.sha256,
            shareable=shareable,
        )
        session.add(document)
        session.flush()
        event = new_event(
            SOURCE,
            "application.document_added",
            app.id,
            DocumentAdded(
                application_id=app.id,
                reference=app.reference,
                company_id=app.company_id,
                document=DocumentRef.model_validate(document, from_attributes=True),
            ),
        )
        add_event(session, event)
        add_timeline(
            session,
            app,
            event.id,
            document.uploaded_at,
            "application.document_added",
            {"document_id": document.id, "kind": document.kind, "filename": document.filename},
        )
        view = DocumentView.model_validate(document, from_attributes=True)
    _committed(request)
    return view


def _room_for_documents(
    session: Session, settings: IntakeSettings, company_id: str, application_id: str
) -> int:
    """Bytes one more document of the application may have under the limits; 413 if none."""
    count, application_bytes = document_totals(session, application_id)
    if count >= settings.max_documents_per_application:
        raise Problem(
            413,
            "Payload too large",
            f"An application holds at most {settings.max_documents_per_application} documents.",
            type_="document-limit",
        )
    room = min(
        settings.max_application_document_bytes - application_bytes,
        settings.upload_quota_bytes - company_document_bytes(session, company_id),
    )
    if room <= 0:
        raise _too_much(settings)
    return room


def _forget_unused(session: Session, folder: Path, sha256: str) -> None:
    """Remove a stored file no document refers to (an upload refused after it was stored)."""
    if session.exec(select(Document.id).where(Document.sha256 == sha256).limit(1)).first() is None:
        (folder / sha256[:2] / sha256).unlink(missing_ok=True)


def _too_much(settings: IntakeSettings) -> Problem:
    return Problem(
        413,
        "Payload too large",
        "The documents would exceed the storage limits: "
        f"{settings.max_application_document_bytes} bytes an application, "
        f"{settings.upload_quota_bytes} bytes a company.",
        type_="storage-quota",
    )


class _StoredFile(BaseModel):
    sha256: str
    size: int
    content_type: str


def _unsupported(reason: str | None = None) -> Problem:
    accepted = "Accepted: " + ", ".join(sorted(domain.ALLOWED_DOCUMENT_TYPES))
    return Problem(
        415, "Unsupported media type", f"The file {reason}. {accepted}" if reason else accepted
    )


def _store_file(upload: UploadFile, folder: Path, limit: int) -> _StoredFile:
    """Copy the upload to content-addressed storage, checking its size, type and structure."""
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    head = b""
    text = domain.TextCheck()
    with tempfile.NamedTemporaryFile(dir=folder, delete=False) as tmp:
        try:
            while chunk := upload.file.read(1024 * 1024):
                size += len(chunk)
                if size > limit:
                    raise Problem(
                        413, "Payload too large", f"This document may have at most {limit} bytes."
                    )
                if len(head) < 8192:
                    head += chunk[: 8192 - len(head)]
                digest.update(chunk)
                text.feed(chunk)
                tmp.write(chunk)
            text.feed(b"", final=True)
            tmp.flush()
            if size == 0:
                raise invalid([{"field": "file", "message": "the file is empty"}])
            content_type = domain.sniff_content_type(head)
            if content_type is None:
                raise _unsupported()
            if content_type == "text/plain" and not text.is_text:
                raise _unsupported("starts as text but is not UTF-8 text throughout")
            if problem := domain.structure_problem(Path(tmp.name), content_type):
                raise _unsupported(problem)
        except BaseException:
            os.unlink(tmp.name)
            raise
    sha = digest.hexdigest()
    target = folder / sha[:2] / sha
    target.parent.mkdir(exist_ok=True)
    os.replace(tmp.name, target)
    return _StoredFile(sha256=sha, size=size, content_type=content_type)


@router.get(
    "/applications/{application_id}/documents/{document_id}",
    summary="Download one of your documents",
    response_class=FileResponse,
)
def download_document(
    application_id: str, document_id: str, request: Request, applicant: Applicant
) -> FileResponse:
    with Session(_engine(request)) as session:
        app = own_application(session, str(applicant.company_id), application_id)
        document = session.get(Document, document_id)
        if app is None or document is None or document.application_id != app.id:
            raise not_found("document")
    path = Path(request.app.state.settings.data_dir) / "documents" / document.sha256[:2]
    ext = domain.ALLOWED_DOCUMENT_TYPES.get(document.content_type, "")
    return FileResponse(
        path / document.sha256,
        media_type=document.content_type,
        filename=Path(document.filename).stem + ext,
    )


@router.post(
    "/applications/{application_id}/information-requests/{request_id}/answer",
    response_model=ApplicationView,
    summary="Answer a request for information",
)
def answer_request(
    application_id: str,
    request_id: str,
    body: AnswerBody,
    request: Request,
    applicant: Applicant,
) -> ApplicationView:
    with session_scope(_engine(request)) as session:
        app = own_application(session, str(applicant.company_id), application_id)
        info = session.get(InformationRequest, request_id)
        if app is None or info is None or info.application_id != app.id:
            raise not_found("information request")
        if info.status != "open":
            raise conflict(f"This request is {info.status}; it cannot be answered.")
        known = set(
            session.exec(select(Document.id).where(Document.application_id == app.id)).all()
        )
        unknown = [d for d in body.document_ids if d not in known]
        if unknown:
            raise invalid(
                [{"field": "document_ids", "message": "not documents of this application"}]
            )
        now = utcnow()
        # Check and write in one statement: of concurrent answers exactly one finds the
        # request open (PostgreSQL re-reads the row after the winner's commit; SQLite runs
        # one writer at a time), so one answer is stored and sent (red-team finding F11).
        claimed = session.execute(
            update(InformationRequest)
            .where(col(InformationRequest.id) == info.id, col(InformationRequest.status) == "open")
            .values(
                status="answered",
                answer=body.answer,
                answered_at=now,
                document_ids=list(body.document_ids),
            )
        )
        if _rowcount(claimed) != 1:
            raise conflict("This request was answered meanwhile; it cannot be answered again.")
        session.refresh(info)
        event = new_event(
            SOURCE,
            "application.information_answered",
            app.id,
            InformationAnswered(
                application_id=app.id,
                reference=app.reference,
                company_id=app.company_id,
                request_id=info.id,
                answer=body.answer,
                document_ids=body.document_ids,
                answered_at=now,
            ),
        )
        add_event(session, event)
        add_timeline(
            session,
            app,
            event.id,
            now,
            "application.information_answered",
            {"request_id": info.id},
        )
        session.flush()
        view = _view(session, app)
    _committed(request)
    return view


@router.post(
    "/applications/{application_id}/withdraw",
    response_model=ApplicationView,
    summary="Withdraw an application that is not yet decided",
)
def withdraw_application(
    application_id: str,
    request: Request,
    applicant: Applicant,
    body: WithdrawBody | None = None,
) -> ApplicationView:
    with session_scope(_engine(request)) as session:
        app = own_application(session, str(applicant.company_id), application_id)
        if app is None:
            raise not_found("application")
        if domain.is_terminal(app.status):
            raise conflict(f"The application is {app.status} already.")
        now = utcnow()
        # Check and write in one statement, so of concurrent withdrawals (or a withdrawal
        # and a decision projected meanwhile) exactly one moves the status (finding F11).
        claimed = session.execute(
            update(Application)
            .where(
                col(Application.id) == app.id,
                col(Application.status).not_in(domain.TERMINAL_STATUSES),
            )
            .values(status="withdrawn", status_changed_at=now, updated_at=now)
        )
        if _rowcount(claimed) != 1:
            session.rollback()
            decided = session.get(Application, app.id)
            status = decided.status if decided is not None else "decided"
            raise conflict(f"The application is {status} already.")
        session.refresh(app)
        event = new_event(
            SOURCE,
            "application.withdrawn",
            app.id,
            ApplicationWithdrawn(
                application_id=app.id,
                reference=app.reference,
                company_id=app.company_id,
                withdrawn_at=now,
                reason=body.reason if body else None,
            ),
        )
        add_event(session, event)
        add_timeline(session, app, event.id, now, "application.withdrawn")
        session.flush()
        view = _view(session, app)
    _committed(request)
    return view
