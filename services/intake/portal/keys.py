"""A company's API keys, for its admins: `/keys` lists the live ones (name, created; never
a secret), creates one with a name and shows its secret once, and revokes one after a
confirmation. A member is refused (403) and has no link to it; another company's key is
not found (404). The rules are shared/accounts/company.py's."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from services.intake.portal.admin import actor_of, form_errors, refusal_page
from services.intake.portal.pages import nav, redirect, render, router
from services.intake.portal.session import Member, accounts_of, posted_form, signed_in
from shared.accounts.company import ApiKey
from shared.accounts.errors import AccountError, Conflict, InvalidInput, NotFound
from shared.http import run_blocking
from shared.i18n import N_

nav("/keys", N_("API keys"), admin_only=True, within=("/keys/",))

NOTICES = {"revoked": N_("The key is revoked: every request with it is refused from now on.")}


def _page(
    request: Request,
    member: Member,
    status: int = 200,
    errors: dict[str, str] | None = None,
    name: str = "",
    created: tuple[ApiKey, str] | None = None,
) -> HTMLResponse:
    try:
        keys = accounts_of(request).company.keys(actor_of(member), member.company_id)
    except AccountError as exc:
        return refusal_page(request, member, exc)
    notice = NOTICES.get(request.query_params.get("done", ""), "")
    return render(
        request,
        "keys.html",
        member,
        status=status,
        keys=keys,
        errors=errors or {},
        name=name,
        created=created,
        notice=notice,
    )


@router.get("/keys", response_class=HTMLResponse)
def keys_page(request: Request) -> HTMLResponse:
    return _page(request, signed_in(request))


@router.post("/keys", response_class=HTMLResponse)
async def create_key(request: Request) -> HTMLResponse:
    """Create a key; the page shows its secret this once (the response is not stored)."""
    member = await run_blocking(signed_in, request)
    form = await posted_form(request)
    name = form.get("name", "")

    def create() -> HTMLResponse:
        try:
            created = accounts_of(request).company.create_key(
                actor_of(member), member.company_id, name
            )
        except (InvalidInput, Conflict) as exc:
            errors = form_errors(request, member, exc)
            return _page(request, member, exc.status, errors=errors, name=name)
        except AccountError as exc:
            return refusal_page(request, member, exc)
        return _page(request, member, 201, created=created)

    return await run_blocking(create)


def _live_key(request: Request, member: Member, key_id: str) -> ApiKey | HTMLResponse:
    try:
        keys = accounts_of(request).company.keys(actor_of(member), member.company_id)
    except AccountError as exc:
        return refusal_page(request, member, exc)
    for key in keys:
        if key.id == key_id:
            return key
    return refusal_page(request, member, NotFound("no API key with id %(id)s", id=key_id))


@router.get("/keys/{key_id}/revoke", response_class=HTMLResponse)
def revoke_key_page(request: Request, key_id: str) -> HTMLResponse:
    """The confirmation: what stops working once the key is revoked."""
    member = signed_in(request)
    key = _live_key(request, member, key_id)
    if isinstance(key, HTMLResponse):
        return key
    return render(request, "key_revoke.html", member, key=key, errors={})


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    member = await run_blocking(signed_in, request)
    await posted_form(request)

    def revoke() -> Response:
        try:
            accounts_of(request).company.revoke_key(actor_of(member), key_id)
        except AccountError as exc:
            return refusal_page(request, member, exc)
        return redirect("/keys?done=revoked")

    return await run_blocking(revoke)
