"""One application's page and its forms: the fields as submitted, the timeline, the
documents (upload, download), the information requests (answer with text and the
application's documents: uploaded first, with the upload form, then named in the answer),
the licence, and withdrawal after a confirmation step.

Every form is checked as the API checks it: its CSRF token (session.posted), the API's
request models (api.AnswerBody, api.WithdrawBody) and the service layer's own refusals
(services/intake/service.py: the document's type from its bytes, the limits, the state);
a refusal is shown next to its field on the page again, and nothing is stored. An
application of another company is "not found", as an unknown one is.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from services.intake import domain, service
from services.intake.api import AnswerBody, WithdrawBody, error_response
from services.intake.errors import (
    IntakeError,
    InvalidField,
    NotFound,
    StorageLimit,
    UnsupportedDocument,
)
from services.intake.portal.pages import redirect, render, router
from services.intake.portal.session import Member, posted, signed_in
from services.intake.settings import IntakeSettings
from shared.downloads import attachment, read_document
from shared.http import run_blocking
from shared.text import text_problem

# The forms of an application's page, each with its own messages (an id per form).
UPLOAD, ANSWER, WITHDRAW = "upload", "answer", "withdraw"


def _settings(request: Request) -> IntakeSettings:
    settings: IntakeSettings = request.app.state.settings
    return settings


def _engine(request: Request) -> Any:
    return request.app.state.runtime.engine


def _committed(request: Request) -> None:
    # The outbox relay sends the events the service layer wrote (as the API's routes do).
    request.app.state.runtime.relay.wake()


def limits(settings: IntakeSettings) -> dict[str, Any]:
    """What a page says of the documents it takes (the service layer enforces them)."""
    return {
        "max_bytes": settings.max_upload_bytes,
        "max_documents": settings.max_documents_per_application,
        "types": sorted(domain.ALLOWED_DOCUMENT_TYPES),
        "kinds": [kind.value for kind in domain.DocumentKind],
    }


def application_page(
    request: Request,
    member: Member,
    application_id: str,
    status: int = 200,
    errors: dict[str, dict[str, str]] | None = None,
    **context: Any,
) -> HTMLResponse:
    view = service.application(_engine(request), member.company_id, application_id)
    return render(
        request,
        "application.html",
        member,
        status=status,
        app=view,
        open_requests=[r for r in view.information_requests if r.status == "open"],
        limits=limits(_settings(request)),
        errors=errors or {},
        notice=request.query_params.get("notice", ""),
        undecided=not domain.is_terminal(view.status),
        **context,
    )


def _refusal_fields(exc: IntakeError, field: str) -> dict[str, str]:
    """A service refusal as the form's messages: next to its field, else above the form."""
    if isinstance(exc, InvalidField):
        return {exc.field: exc.message}
    if isinstance(exc, StorageLimit | UnsupportedDocument):
        return {field: str(exc)}
    return {"form": str(exc)}


def _status_of(exc: IntakeError) -> int:
    """The status the API answers this refusal with (api.error_response: one mapping)."""
    return error_response(exc).status_code


def _invalid(exc: ValidationError) -> dict[str, str]:
    return {str(e["loc"][-1]) if e["loc"] else "form": e["msg"] for e in exc.errors()}


@router.get("/applications/{application_id}", response_class=HTMLResponse)
def show_application(application_id: str, request: Request) -> HTMLResponse:
    member = signed_in(request)
    return application_page(request, member, application_id)


@router.get("/applications/{application_id}/documents/{document_id}")
def download_document(application_id: str, document_id: str, request: Request) -> Response:
    member = signed_in(request)
    found = service.document_file(_engine(request), member.company_id, application_id, document_id)
    content = read_document(request.app.state.documents, found.sha256)
    return attachment(content, found.filename, found.content_type)


def _store_upload(
    request: Request, member: Member, application_id: str, file: UploadFile, kind: str, shared: bool
) -> None:
    if file.filename and (problem := text_problem(file.filename, multiline=False)):
        raise InvalidField("file", f"the file name {problem}")
    service.add_document(
        _engine(request),
        _settings(request),
        request.app.state.documents,
        member.company_id,
        application_id,
        file.file,
        file.filename,
        domain.DocumentKind(kind),
        shared,
    )


def _kind(value: object) -> str | None:
    kinds = {kind.value for kind in domain.DocumentKind}
    return value if isinstance(value, str) and value in kinds else None


@router.post("/applications/{application_id}/documents", response_class=HTMLResponse)
async def upload_document(application_id: str, request: Request) -> Response:
    member = signed_in(request)
    form = await posted(request)
    file, kind = form.get("file"), _kind(form.get("kind", "other"))
    errors: dict[str, str] = {}
    if not isinstance(file, UploadFile) or not file.filename:
        errors["file"] = "choose a file to upload"
    if kind is None:
        errors["kind"] = "choose one of the kinds listed"
    if not errors and isinstance(file, UploadFile) and kind is not None:
        shared = form.get("shareable") == "yes"
        try:
            await run_blocking(_store_upload, request, member, application_id, file, kind, shared)
        except NotFound:
            raise
        except IntakeError as exc:
            return await run_blocking(
                application_page,
                request,
                member,
                application_id,
                _status_of(exc),
                {UPLOAD: _refusal_fields(exc, "file")},
            )
        _committed(request)
        return redirect(f"/applications/{application_id}?notice=uploaded#documents")
    return await run_blocking(
        application_page, request, member, application_id, 422, {UPLOAD: errors}
    )


@router.post(
    "/applications/{application_id}/information-requests/{request_id}/answer",
    response_class=HTMLResponse,
)
async def answer_request(application_id: str, request_id: str, request: Request) -> Response:
    member = signed_in(request)
    form = await posted(request)
    chosen = [d for d in form.getlist("document_ids") if isinstance(d, str)]
    text = form.get("answer")

    def again(status: int, fields: dict[str, str]) -> HTMLResponse:
        # The page again, the answer as typed kept in its field.
        return application_page(
            request,
            member,
            application_id,
            status,
            {f"{ANSWER}-{request_id}": fields},
            answered={request_id: text if isinstance(text, str) else ""},
        )

    try:
        body = AnswerBody(answer=text if isinstance(text, str) else "", document_ids=chosen)
    except ValidationError as exc:
        return await run_blocking(again, 422, _invalid(exc))
    try:
        await run_blocking(
            service.answer,
            _engine(request),
            member.company_id,
            application_id,
            request_id,
            body.answer,
            body.document_ids,
        )
    except NotFound:
        raise
    except IntakeError as exc:
        return await run_blocking(again, _status_of(exc), _refusal_fields(exc, "answer"))
    _committed(request)
    return redirect(f"/applications/{application_id}?notice=answered")


@router.get("/applications/{application_id}/withdraw", response_class=HTMLResponse)
def confirm_withdrawal(application_id: str, request: Request) -> HTMLResponse:
    member = signed_in(request)
    view = service.application(_engine(request), member.company_id, application_id)
    return render(request, "withdraw.html", member, app=view, errors={}, reason="")


@router.post("/applications/{application_id}/withdraw", response_class=HTMLResponse)
async def withdraw_application(application_id: str, request: Request) -> Response:
    member = signed_in(request)
    form = await posted(request)
    reason = form.get("reason")
    reason = reason if isinstance(reason, str) else ""

    def again(status: int, errors: dict[str, str]) -> HTMLResponse:
        view = service.application(_engine(request), member.company_id, application_id)
        return render(
            request, "withdraw.html", member, status=status, app=view, errors=errors, reason=reason
        )

    if form.get("confirm") != "yes":
        return await run_blocking(again, 422, {"confirm": "tick the box to confirm"})
    try:
        body = WithdrawBody(reason=reason.strip() or None)
    except ValidationError as exc:
        return await run_blocking(again, 422, _invalid(exc))
    try:
        await run_blocking(
            service.withdraw, _engine(request), member.company_id, application_id, body.reason
        )
    except NotFound:
        raise
    except IntakeError as exc:
        return await run_blocking(again, _status_of(exc), _refusal_fields(exc, "reason"))
    _committed(request)
    return redirect(f"/applications/{application_id}?notice=withdrawn")
