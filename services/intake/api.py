"""Intake's HTTP routes: applicants register, document, answer and withdraw their applications.

Routes only: each parses its request, calls `services.intake.service` and renders the answer;
`install_errors` maps the service's errors to problem details in one place.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field, StringConstraints, TypeAdapter, ValidationError
from sqlalchemy.engine import Engine

from services.intake import domain, service
from services.intake.errors import (
    IntakeError,
    InvalidField,
    NotFound,
    NumberRegistered,
    StateConflict,
    StorageLimit,
    UnsupportedDocument,
)
from services.intake.settings import IntakeSettings
from services.intake.views import (
    ApplicationPage,
    ApplicationView,
    DocumentView,
    EarlierRequest,
    NewApplication,
    first_view,
)
from shared.applications import ApplicationBody
from shared.db import utcnow
from shared.directory import Principal
from shared.documents import DocumentStore
from shared.downloads import ATTACHMENT, attachment, read_document
from shared.http import (
    authenticated_applicant,
    bearer,
    current_applicant,
    page_params,
    run_blocking,
)
from shared.problems import documented_errors, invalid, problem_response
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


def _settings(request: Request) -> IntakeSettings:
    return request.app.state.settings


def _documents(request: Request) -> DocumentStore:
    return request.app.state.documents


def _company(applicant: Principal) -> str:
    return str(applicant.company_id)


def _committed(request: Request) -> None:
    request.app.state.runtime.relay.wake()


def _cursor(number: int) -> str:
    return base64.urlsafe_b64encode(str(number).encode()).decode().rstrip("=")


def _from_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except ValueError as exc:
        raise invalid([{"field": "cursor", "message": "not a cursor from this API"}]) from exc


def _location(application_id: str) -> dict[str, str]:
    return {"Location": f"/v1/applications/{application_id}"}


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
    new, written = await run_blocking(
        _register, request, credentials, content, idempotency_key, fingerprint
    )
    if isinstance(written, EarlierRequest):
        return await run_blocking(_replay, _engine(request), written, new.fingerprint)
    _committed(request)
    _number, reference = written
    return JSONResponse(
        first_view(new, reference),
        status_code=201,
        headers={"Location": f"/v1/applications/{new.id}"},
    )


def _register(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    content: dict[str, Any],
    idempotency_key: str | None,
    fingerprint: str,
) -> tuple[NewApplication, tuple[int, str] | EarlierRequest]:
    """Authenticate the applicant and write the application: one thread hop for both."""
    applicant = authenticated_applicant(request, credentials)
    state = request.app.state
    return service.submit(
        _engine(request),
        state.writer,
        state.references,
        applicant,
        content,
        idempotency_key,
        fingerprint,
    )


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
    if body is not None:
        goods = request.app.state.controlled_goods
        errors += domain.screening_problems(body, utcnow().date(), goods)
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
    responses={
        409: {
            "description": "Idempotency-Key reused with another body, or the MOFCOM number "
            "registered already (`existing_reference` names its application)"
        }
    },
    route_class_override=_SubmissionRoute,
)


def _replay(engine: Engine, earlier: EarlierRequest, fingerprint: str) -> JSONResponse:
    view = service.replay(engine, earlier, fingerprint)
    headers = {**_location(view.id), "Idempotent-Replayed": "true"}
    return JSONResponse(view.model_dump(mode="json"), status_code=201, headers=headers)


@router.get("/applications", response_model=ApplicationPage, summary="Your applications")
def list_own_applications(
    request: Request,
    applicant: Applicant,
    status: Annotated[str | None, Query(description="Only applications in this status")] = None,
    limit: Annotated[int | None, Query(description="Page size (1 to 200)")] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> ApplicationPage:
    settings = _settings(request)
    size = page_params(limit, settings.default_page_size, settings.max_page_size)
    if status is not None and status not in domain.STATUSES:
        raise invalid(
            [{"field": "status", "message": "must be one of " + ", ".join(domain.STATUSES)}]
        )
    rows = service.applications(
        _engine(request), _company(applicant), status, _from_cursor(cursor), size + 1
    )
    more = len(rows) > size
    rows = rows[:size]
    return ApplicationPage(
        items=[service.summary(r) for r in rows],
        next_cursor=_cursor(rows[-1].number) if more else None,
        limit=size,
    )


@router.get(
    "/applications/{application_id}", response_model=ApplicationView, summary="One application"
)
def get_application(application_id: str, request: Request, applicant: Applicant) -> ApplicationView:
    return service.application(_engine(request), _company(applicant), application_id)


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
    if file.filename and (problem := text_problem(file.filename, multiline=False)):
        raise invalid([{"field": "file", "message": f"the file name {problem}"}])
    view = service.add_document(
        _engine(request),
        _settings(request),
        _documents(request),
        _company(applicant),
        application_id,
        file.file,
        file.filename,
        kind,
        shareable,
    )
    _committed(request)
    return view


@router.get(
    "/applications/{application_id}/documents/{document_id}",
    summary="Download one of your documents",
    response_class=Response,
    responses=ATTACHMENT,
)
def download_document(
    application_id: str, document_id: str, request: Request, applicant: Applicant
) -> Response:
    found = service.document_file(
        _engine(request), _company(applicant), application_id, document_id
    )
    content = read_document(_documents(request), found.sha256)
    return attachment(content, found.filename, found.content_type)


@router.delete(
    "/applications/{application_id}/documents/{document_id}",
    status_code=204,
    response_class=Response,
    summary="Delete one of your documents while no answer refers to it and the case is open",
    responses={409: {"description": "An answer refers to the document, or the case is decided"}},
)
def delete_document(
    application_id: str, document_id: str, request: Request, applicant: Applicant
) -> Response:
    service.delete_document(
        _engine(request), _documents(request), _company(applicant), application_id, document_id
    )
    _committed(request)
    return Response(status_code=204)


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
    view = service.answer(
        _engine(request),
        _company(applicant),
        application_id,
        request_id,
        body.answer,
        body.document_ids,
    )
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
    view = service.withdraw(
        _engine(request), _company(applicant), application_id, body.reason if body else None
    )
    _committed(request)
    return view


# --- the service's errors, as problem details ------------------------------------------------


def error_response(exc: IntakeError) -> JSONResponse:
    if isinstance(exc, NotFound):
        return problem_response(404, "Not found", str(exc))
    if isinstance(exc, NumberRegistered):
        return problem_response(
            409, "Conflict", str(exc), exc.kind, existing_reference=exc.reference
        )
    if isinstance(exc, StateConflict):
        return problem_response(409, "Conflict", str(exc), exc.kind)
    if isinstance(exc, InvalidField):
        errors = [{"field": exc.field, "message": exc.message}]
        return problem_response(
            422, "Validation failed", str(exc), "validation-failed", errors=errors
        )
    if isinstance(exc, StorageLimit):
        return problem_response(413, "Payload too large", str(exc), exc.kind)
    if isinstance(exc, UnsupportedDocument):
        return problem_response(415, "Unsupported media type", str(exc))
    return problem_response(500, "Internal error", "An unexpected error occurred.")


def install_errors(app: FastAPI) -> None:
    """Answer every refusal of the service layer with its problem details."""

    @app.exception_handler(IntakeError)
    async def _refused(_: Request, exc: IntakeError) -> JSONResponse:
        return error_response(exc)
