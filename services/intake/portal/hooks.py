"""The company's webhook endpoints in the portal: `/webhooks` (the endpoints, a new one, a
rotated secret shown once) and `/webhooks/{id}` (its delivery log, a test, enabling it,
recovering what it missed, redelivering one message, deleting it).

Notify owns endpoints and deliveries: every page asks notify's API server-side
(services/intake/notify_client.py) with the signed-in person's session, so notify decides
what they may do (a member reads, an admin changes: its 403 is the page's). Notify not
answering is the page "Webhooks are unavailable right now" (503), never a 500; its field
errors (422) go next to the form's fields.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.intake.notify_client import NotifyClient, NotifyRefused, NotifyUnavailable
from services.intake.portal.pages import nav, redirect, render, router, words_of
from services.intake.portal.session import (
    COOKIE_NAME,
    Member,
    member_if_signed_in,
    posted,
    posted_form,
    signed_in,
)
from services.intake.settings import IntakeSettings
from shared.accounts.web import field
from shared.http import run_blocking
from shared.i18n import N_
from shared.problems import Problem

log = logging.getLogger(__name__)

nav("/webhooks", N_("Webhooks"), within=("/webhooks/",))

T = TypeVar("T")
Cursor = Annotated[str | None, Query(max_length=200)]
# What a form's answer says on the page it returns to (?done=).
DONE = {
    "test": N_("A test message is on its way; it appears in the log below."),
    "enabled": N_("The endpoint is switched on again."),
    "recovered": N_("The messages since then are being sent again, in order."),
    "redelivered": N_("The message is being sent again; its new attempt appears below."),
    "deleted": N_("The endpoint is deleted."),
}


def notify_of(request: Request) -> NotifyClient:
    client: NotifyClient = request.app.state.notify
    return client


def forwarded(request: Request) -> str:
    """The session to forward: the portal's cookie, already checked by `signed_in`."""
    return request.cookies.get(COOKIE_NAME, "")


async def member_of(request: Request) -> Member:
    return await run_blocking(signed_in, request)


async def asked(call: Awaitable[T]) -> T:
    """Notify's answer; a refusal that is not a form's (403, 404, 409) as the portal's page
    of that status (its wording is notify's detail)."""
    try:
        return await call
    except NotifyRefused as exc:
        if exc.status == 422:
            raise
        raise Problem(exc.status, _TITLES.get(exc.status, "Refused"), exc.detail) from exc


_TITLES = {403: "Forbidden", 404: "Not found", 409: "Conflict", 401: "Unauthorized"}


def install(app: FastAPI, settings: IntakeSettings) -> None:
    """Notify's client for the pages, and the page shown while notify does not answer."""
    app.state.notify = NotifyClient(settings.notify_url, settings.notify_timeout_seconds)

    @app.exception_handler(NotifyUnavailable)
    async def _unavailable(request: Request, exc: NotifyUnavailable) -> HTMLResponse:
        log.warning("notify did not answer the portal: %s", exc)
        # The page's route signed the member in already: not counted twice, never a 500.
        member = await run_blocking(member_if_signed_in, request)
        page = render(request, "hooks_unavailable.html", member, status=503)
        page.headers["Retry-After"] = "30"
        return page


def choosable(types: dict[str, Any]) -> list[str]:
    return [item["type"] for item in types["items"]]


async def _list_page(
    request: Request,
    member: Member,
    cursor: str | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    notify, session = notify_of(request), forwarded(request)
    page = await asked(notify.endpoints(session, cursor))
    types = await asked(notify.event_types(session))
    return render(
        request,
        "webhooks.html",
        member,
        status=status,
        endpoints=page["items"],
        next_cursor=page.get("next_cursor"),
        event_types=choosable(types),
        done=_done(request),
        **{"errors": {}, "values": {"event_types": []}, **context},
    )


def _done(request: Request) -> str | None:
    said = DONE.get(request.query_params.get("done", ""))
    return words_of(request).gettext(said) if said else None


@router.get("/webhooks", response_class=HTMLResponse)
async def webhooks_page(request: Request, cursor: Cursor = None) -> Response:
    member = await member_of(request)
    return await _list_page(request, member, cursor)


@router.post("/webhooks", response_class=HTMLResponse)
async def create_endpoint(request: Request) -> Response:
    member = await member_of(request)
    form = await posted(request)
    url, description = field(form, "url").strip(), field(form, "description").strip()
    chosen = [v for v in form.getlist("event_types") if isinstance(v, str)]
    values: dict[str, Any] = {"url": url, "description": description, "event_types": chosen}
    errors: dict[str, str] = {}
    gettext = words_of(request).gettext
    if not url:
        errors["url"] = gettext("Enter the address notify should send to.")
    if not chosen:
        errors["event_types"] = gettext("Choose at least one event.")
    if errors:
        return await _list_page(request, member, status=422, errors=errors, values=values)
    notify = notify_of(request)
    try:
        created = await asked(
            notify.create_endpoint(forwarded(request), url, chosen, description or None)
        )
    except NotifyRefused as exc:
        errors = exc.errors or {"form": exc.detail}
        return await _list_page(request, member, status=422, errors=errors, values=values)
    # The secret is in this answer only: no redirect, or it would be gone.
    return await _list_page(
        request, member, status=201, secret_for=created["id"], secret=created["secret"]
    )


@router.get("/webhooks/{endpoint_id}", response_class=HTMLResponse)
async def endpoint_page(request: Request, endpoint_id: str, cursor: Cursor = None) -> Response:
    member = await member_of(request)
    return await _endpoint_page(request, member, endpoint_id, cursor)


async def _endpoint_page(
    request: Request,
    member: Member,
    endpoint_id: str,
    cursor: str | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    notify, session = notify_of(request), forwarded(request)
    endpoint = await asked(notify.endpoint(session, endpoint_id))
    log = await asked(notify.deliveries(session, endpoint_id, cursor))
    return render(
        request,
        "webhook.html",
        member,
        status=status,
        endpoint=endpoint,
        deliveries=log["items"],
        next_cursor=log.get("next_cursor"),
        done=_done(request),
        **{"errors": {}, "values": {}, **context},
    )


@router.post("/webhooks/{endpoint_id}/rotate-secret", response_class=HTMLResponse)
async def rotate_secret(request: Request, endpoint_id: str) -> Response:
    member = await member_of(request)
    await posted_form(request)
    notify = notify_of(request)
    rotated = await asked(notify.endpoint_action(forwarded(request), endpoint_id, "rotate-secret"))
    return await _endpoint_page(request, member, endpoint_id, secret=rotated["secret"])


@router.post("/webhooks/{endpoint_id}/test")
async def send_test(request: Request, endpoint_id: str) -> Response:
    return await _act(request, endpoint_id, "test")


@router.post("/webhooks/{endpoint_id}/enable")
async def enable(request: Request, endpoint_id: str) -> Response:
    return await _act(request, endpoint_id, "enable", "enabled")


async def _act(
    request: Request, endpoint_id: str, action: str, done: str | None = None
) -> Response:
    await member_of(request)
    await posted_form(request)
    await asked(notify_of(request).endpoint_action(forwarded(request), endpoint_id, action))
    return redirect(f"/webhooks/{endpoint_id}?done={done or action}")


def utc_moment(typed: str) -> str | None:
    """A datetime-local field's value (no zone: the portal's times are UTC, as the label
    says) as an ISO date-time with its offset; None if it is not a date-time."""
    try:
        moment = datetime.fromisoformat(typed)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


@router.post("/webhooks/{endpoint_id}/recover", response_class=HTMLResponse)
async def recover(request: Request, endpoint_id: str) -> Response:
    member = await member_of(request)
    fields = await posted_form(request)
    since = fields.get("since", "").strip()
    moment = utc_moment(since)
    if moment is None:
        errors = {"since": words_of(request).gettext("Enter the time from which to send again.")}
    else:
        try:
            await asked(notify_of(request).recover(forwarded(request), endpoint_id, moment))
            return redirect(f"/webhooks/{endpoint_id}?done=recovered")
        except NotifyRefused as exc:
            errors = exc.errors or {"since": exc.detail}
    return await _endpoint_page(
        request, member, endpoint_id, status=422, errors=errors, values={"since": since}
    )


@router.post("/webhooks/{endpoint_id}/delete")
async def delete(request: Request, endpoint_id: str) -> Response:
    await member_of(request)
    await posted_form(request)
    await asked(notify_of(request).delete_endpoint(forwarded(request), endpoint_id))
    return redirect("/webhooks?done=deleted")


@router.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(request: Request, endpoint_id: str, delivery_id: str) -> Response:
    await member_of(request)
    await posted_form(request)
    await asked(notify_of(request).redeliver(forwarded(request), delivery_id))
    return redirect(f"/webhooks/{endpoint_id}?done=redelivered")
