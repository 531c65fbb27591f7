"""Notify's HTTP routes: applicants manage their webhook endpoints and read the delivery log.

Routes only: each parses its request, calls `services.notify.service` and renders the answer;
`install_errors` maps the service's errors to problem details in one place.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy.engine import Engine

from services.notify import service, store
from services.notify.domain import payloads, ssrf
from services.notify.settings import NotifySettings
from shared.directory import Principal
from shared.forwarded import acting_for, company_admin, current_company
from shared.http import page_params
from shared.i18n import LANGUAGES
from shared.problems import documented_errors, invalid, problem_response

router = APIRouter(prefix="/v1", tags=["webhooks"], responses=documented_errors())
# The company, by its API key or a staff member's session forwarded by the portal
# (shared/forwarded.py): a member may read, only an admin (or a key) may change endpoints.
Applicant = Annotated[Principal, Depends(current_company)]
Admin = Annotated[Principal, Depends(company_admin)]
# The query parameters of a delivery log (an endpoint's, a person's).
StatusFilter = Annotated[str | None, Query(description="Only deliveries in this status")]
PageSize = Annotated[int | None, Query(description="Page size (1 to 200)")]
Cursor = Annotated[str | None, Query(max_length=200)]


# --- request and response shapes -------------------------------------------------------------


class EndpointBody(BaseModel):
    model_config = {"extra": "forbid"}

    url: str = Field(
        min_length=1, max_length=ssrf.MAX_URL_LENGTH, examples=["https://example.com/hooks"]
    )
    event_types: list[str] = Field(
        min_length=1,
        max_length=len(payloads.PUBLIC_EVENT_TYPES),
        examples=[sorted(payloads.PUBLIC_EVENT_TYPES)],
    )
    description: str | None = Field(None, max_length=500)


class EndpointView(BaseModel):
    id: str
    url: str
    description: str | None
    event_types: list[str]
    status: str = Field(description="`active`, or `disabled` (see `disabled_reason`)")
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None = Field(
        description="First failed attempt since the last success; after 5 days it is disabled"
    )
    previous_secret_expires_at: datetime | None = Field(
        description="Until then deliveries are signed with the previous secret as well"
    )
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointView):
    secret: str = Field(description="The signing secret (`whsec_…`); shown only this once")


class EndpointPage(BaseModel):
    items: list[EndpointView]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page")
    limit: int


class SecretRotated(BaseModel):
    id: str
    secret: str = Field(description="The new signing secret; shown only this once")
    previous_secret_expires_at: datetime | None


class AttemptView(BaseModel):
    number: int
    attempted_at: datetime
    status_code: int | None
    duration_ms: int
    error: str | None
    outcome: str = Field(description="succeeded, retrying, failed or endpoint_disabled")
    next_retry_at: datetime | None


class DeliveryView(BaseModel):
    id: str
    endpoint_id: str
    webhook_id: str = Field(description="The `webhook-id` header, the same on every attempt")
    event_type: str
    application_id: str | None
    status: str = Field(description="pending, succeeded, failed or cancelled")
    attempt_count: int
    next_attempt_at: datetime | None
    created_at: datetime
    succeeded_at: datetime | None
    payload: dict[str, Any]
    attempts: list[AttemptView]


class DeliveryPage(BaseModel):
    items: list[DeliveryView]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page")
    limit: int


class RecoverBody(BaseModel):
    model_config = {"extra": "forbid"}

    since: AwareDatetime = Field(description="Send again every message from this time on")
    failed_only: bool = Field(
        False, description="Leave out messages this endpoint has already received"
    )


class RecoverResult(BaseModel):
    endpoint_id: str
    since: datetime
    scheduled: int


# --- helpers ---------------------------------------------------------------------------------


def _engine(request: Request) -> Engine:
    return request.app.state.runtime.engine


def _settings(request: Request) -> NotifySettings:
    return request.app.state.settings


def _wake_worker(request: Request) -> None:
    request.app.state.worker.wake()


def _company(applicant: Principal) -> str:
    return str(applicant.company_id)


def _endpoint_view(endpoint: store.WebhookEndpoint) -> EndpointView:
    view = EndpointView.model_validate(endpoint, from_attributes=True)
    view.event_types = sorted(endpoint.event_types)
    return view


def _delivery_view(
    delivery: store.Delivery, message: store.Message, attempts: list[store.Attempt]
) -> DeliveryView:
    return DeliveryView(
        **{
            name: getattr(delivery, name)
            for name in DeliveryView.model_fields
            if name not in ("payload", "attempts")
        },
        payload=store.body_of(message),
        attempts=[AttemptView.model_validate(a, from_attributes=True) for a in attempts],
    )


def _scheduled_view(scheduled: service.Scheduled) -> DeliveryView:
    return _delivery_view(scheduled.delivery, scheduled.message, scheduled.attempts)


def _cursor(at: datetime, key: str) -> str:
    raw = json.dumps([at.isoformat(), key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _from_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        at, key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(at), str(key)
    except (ValueError, TypeError) as exc:
        raise invalid([{"field": "cursor", "message": "not a cursor from this API"}]) from exc


# --- endpoints -------------------------------------------------------------------------------


@router.post(
    "/webhook-endpoints",
    status_code=201,
    response_model=EndpointCreated,
    summary="Register a webhook endpoint (the secret is shown only in this answer)",
)
def create_endpoint(body: EndpointBody, request: Request, applicant: Admin) -> JSONResponse:
    endpoint = service.register_endpoint(
        _engine(request),
        _settings(request),
        _company(applicant),
        body.url,
        body.event_types,
        body.description,
    )
    created = EndpointCreated(**_endpoint_view(endpoint).model_dump(), secret=endpoint.secret)
    return JSONResponse(
        created.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/v1/webhook-endpoints/{created.id}"},
    )


@router.get("/webhook-endpoints", response_model=EndpointPage, summary="Your webhook endpoints")
def list_endpoints(
    request: Request,
    applicant: Applicant,
    limit: Annotated[int | None, Query(description="Page size (1 to 200)")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> EndpointPage:
    settings = _settings(request)
    size = page_params(limit, settings.default_page_size, settings.max_page_size)
    rows = service.endpoints(_engine(request), _company(applicant), _from_cursor(cursor), size + 1)
    more = len(rows) > size
    rows = rows[:size]
    return EndpointPage(
        items=[_endpoint_view(e) for e in rows],
        next_cursor=_cursor(rows[-1].created_at, rows[-1].id) if more else None,
        limit=size,
    )


@router.get(
    "/webhook-endpoints/{endpoint_id}", response_model=EndpointView, summary="One webhook endpoint"
)
def get_endpoint(endpoint_id: str, request: Request, applicant: Applicant) -> EndpointView:
    return _endpoint_view(service.endpoint(_engine(request), _company(applicant), endpoint_id))


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a webhook endpoint; what is still waiting to go to it is cancelled",
)
def delete_endpoint(endpoint_id: str, request: Request, applicant: Admin) -> Response:
    service.delete_endpoint(_engine(request), _company(applicant), endpoint_id)
    return Response(status_code=204)


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    response_model=SecretRotated,
    summary="Replace the signing secret; the old one keeps signing during a grace period",
)
def rotate_secret(endpoint_id: str, request: Request, applicant: Admin) -> SecretRotated:
    rotated = service.rotate_secret(
        _engine(request), _settings(request), _company(applicant), endpoint_id
    )
    return SecretRotated(
        id=rotated.endpoint_id,
        secret=rotated.secret,
        previous_secret_expires_at=rotated.previous_secret_expires_at,
    )


@router.post(
    "/webhook-endpoints/{endpoint_id}/enable",
    response_model=EndpointView,
    summary="Switch a disabled endpoint on again (then recover what it missed)",
)
def enable_endpoint(endpoint_id: str, request: Request, applicant: Admin) -> EndpointView:
    return _endpoint_view(
        service.enable_endpoint(_engine(request), _company(applicant), endpoint_id)
    )


@router.post(
    "/webhook-endpoints/{endpoint_id}/test",
    status_code=202,
    response_model=DeliveryView,
    summary="Send a `webhook.test` message to this endpoint",
)
def send_test(endpoint_id: str, request: Request, applicant: Admin) -> DeliveryView:
    view = _scheduled_view(service.send_test(_engine(request), _company(applicant), endpoint_id))
    _wake_worker(request)
    return view


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries",
    response_model=DeliveryPage,
    summary="The delivery log: each message to this endpoint with all its attempts, newest first",
)
def list_deliveries(
    endpoint_id: str,
    request: Request,
    applicant: Applicant,
    status: StatusFilter = None,
    limit: PageSize = None,
    cursor: Cursor = None,
) -> DeliveryPage:
    size = _log_params(request, status, limit)
    log = service.deliveries(
        _engine(request), _company(applicant), endpoint_id, status, _from_cursor(cursor), size + 1
    )
    return _log_page(log, size)


def _log_params(request: Request, status: str | None, limit: int | None) -> int:
    """The page size of a delivery log, once the status asked for is checked."""
    settings = _settings(request)
    if status is not None and status not in store.DELIVERY_STATUSES:
        raise invalid(
            [{"field": "status", "message": "must be one of " + ", ".join(store.DELIVERY_STATUSES)}]
        )
    return page_params(limit, settings.default_page_size, settings.max_page_size)


def _log_page(log: service.DeliveryLog, size: int) -> DeliveryPage:
    more = len(log.rows) > size
    rows = log.rows[:size]
    last = rows[-1][0] if rows else None
    return DeliveryPage(
        items=[_delivery_view(d, m, log.attempts[d.id]) for d, m in rows],
        next_cursor=_cursor(last.created_at, last.id) if more and last else None,
        limit=size,
    )


# --- deliveries ------------------------------------------------------------------------------


@router.get("/deliveries/{delivery_id}", response_model=DeliveryView, summary="One delivery")
def get_delivery(delivery_id: str, request: Request, applicant: Applicant) -> DeliveryView:
    return _scheduled_view(service.delivery(_engine(request), _company(applicant), delivery_id))


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryView,
    summary="Send one message again now, with the same webhook-id",
)
def redeliver(delivery_id: str, request: Request, applicant: Admin) -> DeliveryView:
    view = _scheduled_view(service.redeliver(_engine(request), _company(applicant), delivery_id))
    _wake_worker(request)
    return view


@router.post(
    "/webhook-endpoints/{endpoint_id}/recover",
    status_code=202,
    response_model=RecoverResult,
    summary="Send again every message of a subscribed type since a time, in order",
)
def recover(
    endpoint_id: str, body: RecoverBody, request: Request, applicant: Admin
) -> RecoverResult:
    scheduled = service.recover(
        _engine(request), _company(applicant), endpoint_id, body.since, body.failed_only
    )
    _wake_worker(request)
    return RecoverResult(endpoint_id=endpoint_id, since=body.since, scheduled=scheduled)


# --- what may be chosen ----------------------------------------------------------------------


class EventTypeView(BaseModel):
    type: str
    emailed_by_default: bool = Field(description="A person is e-mailed about it until they choose")


class EventTypes(BaseModel):
    items: list[EventTypeView]


@router.get(
    "/event-types",
    response_model=EventTypes,
    summary="The event types an endpoint may subscribe to and a person may be e-mailed about",
)
def event_types(applicant: Applicant) -> EventTypes:
    return EventTypes(
        items=[
            EventTypeView(type=name, emailed_by_default=name in payloads.DEFAULT_EMAIL_TYPES)
            for name in sorted(payloads.PUBLIC_EVENT_TYPES)
        ]
    )


# --- people's e-mail -------------------------------------------------------------------------


class EmailChoiceBody(BaseModel):
    model_config = {"extra": "forbid"}

    event_types: list[str] | None = Field(
        None,
        max_length=len(payloads.PUBLIC_EVENT_TYPES),
        description="What the person is e-mailed about; an empty list: nothing; left out: as it is",
        examples=[sorted(payloads.DEFAULT_EMAIL_TYPES)],
    )
    language: str | None = Field(
        None,
        max_length=35,
        description="The language of the person's e-mails: " + ", ".join(LANGUAGES),
        examples=["zh-Hans"],
    )


class EmailChoiceView(BaseModel):
    person_id: str
    email: str
    event_types: list[str] = Field(
        description="Until the person chooses: " + ", ".join(sorted(payloads.DEFAULT_EMAIL_TYPES))
    )
    language: str = Field(description="The language of the person's e-mails (`en` until chosen)")


def _directory(request: Request) -> Engine:
    return request.app.state.runtime.directory_engine


@router.get(
    "/people/{person_id}/notifications",
    response_model=EmailChoiceView,
    tags=["e-mail"],
    summary="What one of your company's people is e-mailed about",
)
def get_email_choice(person_id: str, request: Request, applicant: Applicant) -> EmailChoiceView:
    acting_for(applicant, person_id)
    choice = service.email_choice(
        _engine(request), _directory(request), _company(applicant), person_id
    )
    return EmailChoiceView.model_validate(choice, from_attributes=True)


@router.put(
    "/people/{person_id}/notifications",
    response_model=EmailChoiceView,
    tags=["e-mail"],
    summary="Choose what one of your company's people is e-mailed about",
)
def put_email_choice(
    person_id: str, body: EmailChoiceBody, request: Request, applicant: Applicant
) -> EmailChoiceView:
    acting_for(applicant, person_id)
    choice = service.choose_email(
        _engine(request),
        _directory(request),
        _company(applicant),
        person_id,
        body.event_types,
        body.language,
    )
    return EmailChoiceView.model_validate(choice, from_attributes=True)


@router.get(
    "/people/{person_id}/notifications/deliveries",
    response_model=DeliveryPage,
    tags=["e-mail"],
    summary="The e-mail delivery log of one of your company's people, newest first",
)
def list_email_deliveries(
    person_id: str,
    request: Request,
    applicant: Applicant,
    status: StatusFilter = None,
    limit: PageSize = None,
    cursor: Cursor = None,
) -> DeliveryPage:
    acting_for(applicant, person_id)
    size = _log_params(request, status, limit)
    log = service.email_deliveries(
        _engine(request),
        _directory(request),
        _company(applicant),
        person_id,
        status,
        _from_cursor(cursor),
        size + 1,
    )
    return _log_page(log, size)


# --- the service's errors, as problem details ------------------------------------------------


def _error_response(exc: service.NotifyError) -> JSONResponse:
    if isinstance(exc, service.NotFound):
        return problem_response(404, "Not found", str(exc))
    if isinstance(exc, service.EndpointRefused):
        errors = [{"field": field, "message": message} for field, message in exc.errors]
        return problem_response(
            422, "Validation failed", str(exc), "validation-failed", errors=errors
        )
    if isinstance(exc, service.StateConflict):
        return problem_response(409, "Conflict", str(exc), exc.kind)
    return problem_response(500, "Internal error", "An unexpected error occurred.")


def install_errors(app: FastAPI) -> None:
    """Answer every refusal of the service layer with its problem details."""

    @app.exception_handler(service.NotifyError)
    async def _refused(_: Request, exc: service.NotifyError) -> JSONResponse:
        return _error_response(exc)
