"""A company's colleagues, for its admins: `/colleagues` lists the staff with role and status
and the open invitations, invites a colleague (the link e-mailed where SMTP is set up, shown
to the admin otherwise), changes a role admin<->member, and disables or enables a colleague
after a confirmation (their sessions end at once, in every service). The last admin cannot
demote or disable themselves (409). The rules are shared/accounts/company.py's."""

from __future__ import annotations

import logging

import aiosmtplib
from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from services.intake.portal.admin import actor_of, form_errors, refusal_page
from services.intake.portal.pages import nav, redirect, render, router
from services.intake.portal.session import Member, accounts_of, posted_form, signed_in
from shared.accounts.company import Colleague
from shared.accounts.errors import AccountError, Conflict, InvalidInput, NotFound
from shared.accounts.invitations import Link
from shared.accounts.mail import INVITATION_SUBJECT, invitation_text
from shared.accounts.models import StaffRole
from shared.accounts.web import LinkMailSettings
from shared.http import run_blocking
from shared.i18n import N_
from shared.mail import send_message, text_message

log = logging.getLogger(__name__)

nav("/colleagues", N_("Colleagues"), admin_only=True, within=("/colleagues/",))

ROLES = tuple(r.value for r in StaffRole)
NOTICES = {
    "role": N_("The role is changed; the colleague signs in again to use it."),
    "disabled": N_("The colleague is disabled: every session of theirs has ended."),
    "enabled": N_("The colleague is enabled again and may sign in."),
}
# The two changes behind a confirmation: what the page asks, and what its button says.
CHANGES = {
    "disable": (N_("Disable %(name)s?"), N_("Disable")),
    "enable": (N_("Enable %(name)s again?"), N_("Enable")),
}


def _page(
    request: Request,
    member: Member,
    status: int = 200,
    errors: dict[str, str] | None = None,
    invite: dict[str, str] | None = None,
    invited: tuple[str, str | None, bool] | None = None,
) -> HTMLResponse:
    try:
        colleagues = accounts_of(request).company.colleagues(actor_of(member), member.company_id)
    except AccountError as exc:
        return refusal_page(request, member, exc)
    return render(
        request,
        "colleagues.html",
        member,
        status=status,
        colleagues=colleagues,
        roles=ROLES,
        errors=errors or {},
        invite=invite or {"role": StaffRole.member.value},
        invited=invited,
        notice=NOTICES.get(request.query_params.get("done", ""), ""),
    )


@router.get("/colleagues", response_class=HTMLResponse)
def colleagues_page(request: Request) -> HTMLResponse:
    return _page(request, signed_in(request))


@router.post("/colleagues", response_class=HTMLResponse)
async def invite_colleague(request: Request) -> HTMLResponse:
    """Invite a colleague: the link goes by e-mail where SMTP is set up; otherwise the page
    shows it to the admin (once) to pass on."""
    member = await run_blocking(signed_in, request)
    form = await posted_form(request)
    wanted = {k: form.get(k, "").strip() for k in ("email", "name", "role")}

    def invite() -> Link | HTMLResponse:
        try:
            return accounts_of(request).company.invite(
                actor_of(member), member.company_id, wanted["email"], wanted["name"], wanted["role"]
            )
        except (InvalidInput, Conflict) as exc:
            errors = form_errors(request, member, exc, where="invite-")
            return _page(request, member, exc.status, errors=errors, invite=wanted)
        except AccountError as exc:
            return refusal_page(request, member, exc)

    link = await run_blocking(invite)
    if isinstance(link, HTMLResponse):
        return link
    settings: LinkMailSettings = request.app.state.settings
    url = link.url(settings)
    mailed = bool(settings.smtp_url) and await _mail(settings, link, url)
    invited = (link.invitation.email, None if mailed else url, bool(settings.smtp_url))
    return await run_blocking(_page, request, member, 201, invited=invited)


async def _mail(settings: LinkMailSettings, link: Link, url: str) -> bool:
    """E-mail the invitation; False if the server refused or did not answer (the page then
    shows the link, which is valid all the same)."""
    text = invitation_text(link.invitation, url)
    mail = text_message(settings.smtp_from, link.invitation.email, INVITATION_SUBJECT, text)
    try:
        await send_message(settings, mail)
    except (OSError, aiosmtplib.SMTPException) as exc:
        log.warning("the invitation to %s could not be e-mailed: %s", link.invitation.email, exc)
        return False
    return True


@router.post("/colleagues/{person_id}/role", response_class=HTMLResponse)
async def change_role(request: Request, person_id: str) -> Response:
    member = await run_blocking(signed_in, request)
    form = await posted_form(request)

    def change() -> Response:
        try:
            accounts_of(request).company.change_role(
                actor_of(member), member.company_id, person_id, form.get("role", "")
            )
        except (InvalidInput, Conflict) as exc:
            # Next to the role's field of that colleague's row.
            errors = {f"role-{person_id}": form_errors(request, member, exc)[exc.field or "form"]}
            return _page(request, member, exc.status, errors=errors)
        except AccountError as exc:
            return refusal_page(request, member, exc)
        return redirect("/colleagues?done=role")

    return await run_blocking(change)


def _colleague(request: Request, member: Member, person_id: str) -> Colleague | HTMLResponse:
    try:
        colleagues = accounts_of(request).company.colleagues(actor_of(member), member.company_id)
    except AccountError as exc:
        return refusal_page(request, member, exc)
    for colleague in colleagues:
        if colleague.id == person_id and colleague.status != "invited":
            return colleague
    return refusal_page(request, member, NotFound("no colleague with id %(id)s", id=person_id))


def _confirmation(
    request: Request,
    member: Member,
    colleague: Colleague,
    change: str,
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    question, button = CHANGES[change]
    return render(
        request,
        "colleague_confirm.html",
        member,
        status=status,
        colleague=colleague,
        change=change,
        question=question,
        button=button,
        errors=errors or {},
    )


@router.get("/colleagues/{person_id}/{change}", response_class=HTMLResponse)
def confirm_page(request: Request, person_id: str, change: str) -> HTMLResponse:
    """The confirmation of disabling or enabling a colleague."""
    member = signed_in(request)
    if change not in CHANGES:
        return refusal_page(request, member, NotFound("no such page %(page)s", page=change))
    colleague = _colleague(request, member, person_id)
    if isinstance(colleague, HTMLResponse):
        return colleague
    return _confirmation(request, member, colleague, change)


@router.post("/colleagues/{person_id}/{change}")
async def confirmed(request: Request, person_id: str, change: str) -> Response:
    member = await run_blocking(signed_in, request)
    await posted_form(request)

    def apply() -> Response:
        if change not in CHANGES:
            return refusal_page(request, member, NotFound("no such page %(page)s", page=change))
        company = accounts_of(request).company
        act = company.disable if change == "disable" else company.enable
        try:
            act(actor_of(member), member.company_id, person_id)
        except Conflict as exc:
            colleague = _colleague(request, member, person_id)
            if isinstance(colleague, HTMLResponse):
                return colleague
            errors = form_errors(request, member, exc)
            return _confirmation(
                request,
                member,
                colleague,
                change,
                exc.status,
                {"form": next(iter(errors.values()))},
            )
        except AccountError as exc:
            return refusal_page(request, member, exc)
        return redirect(f"/colleagues?done={change}d")

    return await run_blocking(apply)
