"""Notify's HTTP routes: applicants manage their webhook endpoints and read the delivery log."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.notify import store
from services.notify.domain import payloads, signing, ssrf
from services.notify.settings import NotifySettings
from shared.db import session_scope, utcnow
from shared.directory import Principal
from shared.http import current_applicant, page_params
from shared.problems import Problem, conflict, documented_errors, invalid, not_found

router = APIRouter(prefix="/v1", tags=["webhooks"], responses=documented_errors())
Applicant = Annotated[Principal, Depends(current_applicant)]


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


def _one_delivery_view(session: Session, delivery: store.Delivery) -> DeliveryView:
    message = session.get(store.Message, delivery.message_seq)
    assert message is not None
    return _delivery_view(delivery, message, store.attempts_of(session, [delivery.id])[delivery.id])


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


def _own_endpoint(
    session: Session, applicant: Principal, endpoint_id: str
) -> store.WebhookEndpoint:
    endpoint = store.own_endpoint(session, _company(applicant), endpoint_id)
    if endpoint is None:
        raise not_found("webhook endpoint")
    return endpoint


def _require_active(endpoint: store.WebhookEndpoint) -> None:
    if endpoint.status != store.ACTIVE:
        raise conflict(
            "The endpoint is disabled; enable it first "
            f"(POST /v1/webhook-endpoints/{endpoint.id}/enable).",
            type_="endpoint-disabled",
        )


def _check_endpoint(body: EndpointBody, policy: ssrf.WebhookURLPolicy) -> frozenset[str]:
    """The subscribed types if the URL and types are acceptable; else a 422 naming each field."""
    errors: list[dict[str, str]] = []
    types: frozenset[str] = frozenset()
    try:
        types = payloads.validate_event_types(body.event_types)
    except payloads.InvalidEventTypes as exc:
        errors.append({"field": "event_types", "message": str(exc)})
    try:
        ssrf.check_url(body.url, policy)
    except ssrf.UnsafeWebhookURL as exc:
        errors.append({"field": "url", "message": exc.reason})
    if errors:
        raise invalid(errors, "The endpoint cannot be registered; see `errors`.")
    return types


# --- endpoints -------------------------------------------------------------------------------


@router.post(
    "/webhook-endpoints",
    status_code=201,
    response_model=EndpointCreated,
    summary="Register a webhook endpoint (the secret is shown only in this answer)",
)
def create_endpoint(body: EndpointBody, request: Request, applicant: Applicant) -> JSONResponse:
    settings = _settings(request)
    types = _check_endpoint(body, settings.url_policy())
    now = utcnow()
    with session_scope(_engine(request)) as session:
        if (
            store.count_endpoints(session, _company(applicant))
            >= settings.max_endpoints_per_company
        ):
            raise conflict(
                f"A company may have at most {settings.max_endpoints_per_company} endpoints; "
                "delete one first.",
                type_="too-many-endpoints",
            )
        endpoint = store.WebhookEndpoint(
            company_id=_company(applicant),
            url=body.url,
            description=body.description,
            event_types=sorted(types),
            secret=signing.generate_secret(),
            created_at=now,
            updated_at=now,
        )
        session.add(endpoint)
        session.flush()
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
    with Session(_engine(request)) as session:
        rows = store.list_endpoints(session, _company(applicant), _from_cursor(cursor), size + 1)
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
    with Session(_engine(request)) as session:
        return _endpoint_view(_own_endpoint(session, applicant, endpoint_id))


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a webhook endpoint; what is still waiting to go to it is cancelled",
)
def delete_endpoint(endpoint_id: str, request: Request, applicant: Applicant) -> Response:
    now = utcnow()
    with session_scope(_engine(request)) as session:
        endpoint = _own_endpoint(session, applicant, endpoint_id)
        endpoint.deleted_at = endpoint.updated_at = now
        session.add(endpoint)
        store.cancel_pending(session, endpoint.id, now)
    return Response(status_code=204)


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    response_model=SecretRotated,
    summary="Replace the signing secret; the old one keeps signing during a grace period",
)
def rotate_secret(endpoint_id: str, request: Request, applicant: Applicant) -> SecretRotated:
    grace = _settings(request).secret_rotation_grace
    now = utcnow()
    with session_scope(_engine(request)) as session:
        endpoint = _own_endpoint(session, applicant, endpoint_id)
        if grace.total_seconds() > 0:
            endpoint.previous_secret = endpoint.secret
            endpoint.previous_secret_expires_at = now + grace
        else:
            endpoint.previous_secret = endpoint.previous_secret_expires_at = None
        endpoint.secret = signing.generate_secret()
        endpoint.updated_at = now
        session.add(endpoint)
        return SecretRotated(
            id=endpoint.id,
            secret=endpoint.secret,
            previous_secret_expires_at=endpoint.previous_secret_expires_at,
        )


@router.post(
    "/webhook-endpoints/{endpoint_id}/enable",
    response_model=EndpointView,
    summary="Switch a disabled endpoint on again (then recover what it missed)",
)
def enable_endpoint(endpoint_id: str, request: Request, applicant: Applicant) -> EndpointView:
    with session_scope(_engine(request)) as session:
        endpoint = _own_endpoint(session, applicant, endpoint_id)
        endpoint.status = store.ACTIVE
        endpoint.disabled_reason = endpoint.disabled_at = endpoint.failing_since = None
        endpoint.updated_at = utcnow()
        session.add(endpoint)
        return _endpoint_view(endpoint)


@router.post(
    "/webhook-endpoints/{endpoint_id}/test",
    status_code=202,
    response_model=DeliveryView,
    summary="Send a `webhook.test` message to this endpoint",
)
def send_test(endpoint_id: str, request: Request, applicant: Applicant) -> DeliveryView:
    now = utcnow()
    with session_scope(_engine(request)) as session:
        endpoint = _own_endpoint(session, applicant, endpoint_id)
        _require_active(endpoint)
        test = payloads.webhook_test_message(
            str(uuid.uuid4()), endpoint.company_id, endpoint.id, now
        )
        message = store.add_message(session, test, now)
        delivery = store.schedule(session, message, endpoint, now)
        session.flush()
        view = _delivery_view(delivery, message, [])
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
    status: Annotated[str | None, Query(description="Only deliveries in this status")] = None,
    limit: Annotated[int | None, Query(description="Page size (1 to 200)")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> DeliveryPage:
    settings = _settings(request)
    size = page_params(limit, settings.default_page_size, settings.max_page_size)
    if status is not None and status not in store.DELIVERY_STATUSES:
        raise invalid(
            [{"field": "status", "message": "must be one of " + ", ".join(store.DELIVERY_STATUSES)}]
        )
    with Session(_engine(request)) as session:
        endpoint = _own_endpoint(session, applicant, endpoint_id)
        rows = store.list_deliveries(session, endpoint.id, status, _from_cursor(cursor), size + 1)
        more = len(rows) > size
        rows = rows[:size]
        attempts = store.attempts_of(session, [d.id for d, _m in rows])
    last = rows[-1][0] if rows else None
    return DeliveryPage(
        items=[_delivery_view(d, m, attempts[d.id]) for d, m in rows],
        next_cursor=_cursor(last.created_at, last.id) if more and last else None,
        limit=size,
    )


# --- deliveries ------------------------------------------------------------------------------


@router.get("/deliveries/{delivery_id}", response_model=DeliveryView, summary="One delivery")
def get_delivery(delivery_id: str, request: Request, applicant: Applicant) -> DeliveryView:
    with Session(_engine(request)) as session:
        delivery = store.own_delivery(session, _company(applicant), delivery_id)
        if delivery is None:
            raise not_found("delivery")
        return _one_delivery_view(session, delivery)


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryView,
    summary="Send one message again now, with the same webhook-id",
)
def redeliver(delivery_id: str, request: Request, applicant: Applicant) -> DeliveryView:
    now = utcnow()
    with session_scope(_engine(request)) as session:
        delivery = store.own_delivery(session, _company(applicant), delivery_id)
        if delivery is None:
            raise not_found("delivery")
        endpoint = session.get(store.WebhookEndpoint, delivery.endpoint_id)
        assert endpoint is not None
        _require_active(endpoint)
        lease = delivery.lease_until
        if delivery.status == store.PENDING and lease is not None and lease > now:
            raise Problem(
                409,
                "Conflict",
                "An attempt of this delivery is in progress; look at the log in a moment.",
                type_="attempt-in-progress",
            )
        if delivery.status == store.PENDING:
            delivery.next_attempt_at = delivery.updated_at = now
        else:
            store.reschedule(delivery, now)
        session.add(delivery)
        session.flush()
        view = _one_delivery_view(session, delivery)
    _wake_worker(request)
    return view


@router.post(
    "/webhook-endpoints/{endpoint_id}/recover",
    status_code=202,
    response_model=RecoverResult,
    summary="Send again every message of a subscribed type since a time, in order",
)
def recover(
    endpoint_id: str, body: RecoverBody, request: Request, applicant: Applicant
) -> RecoverResult:
    now = utcnow()
    scheduled = 0
    with session_scope(_engine(request)) as session:
        endpoint = _own_endpoint(session, applicant, endpoint_id)
        _require_active(endpoint)
        messages = store.messages_since(
            session, endpoint.company_id, body.since, endpoint.event_types
        )
        existing = store.deliveries_since(session, endpoint.id, body.since)
        for message in messages:
            assert message.seq is not None
            delivery = existing.get(message.seq)
            if delivery is None:
                store.schedule(session, message, endpoint, now)
            elif delivery.status == store.PENDING or (
                body.failed_only and delivery.status == store.SUCCEEDED
            ):
                continue
            else:
                store.reschedule(delivery, now)
                session.add(delivery)
            scheduled += 1
    _wake_worker(request)
    return RecoverResult(endpoint_id=endpoint_id, since=body.since, scheduled=scheduled)
