"""`/me/emails`: what the signed-in person is e-mailed about, through notify's
`GET/PUT /v1/people/{person_id}/notifications` with their own session forwarded (notify lets
a session act for its own person only). Notify not answering: the page says so (503)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from services.intake.notify_client import NotifyRefused
from services.intake.portal.hooks import asked, choosable, forwarded, member_of, notify_of
from services.intake.portal.pages import nav, redirect, render, router, words_of
from services.intake.portal.session import Member, posted
from shared.i18n import N_

nav("/me/emails", N_("My e-mails"))


async def _page(
    request: Request,
    member: Member,
    chosen: list[str] | None = None,
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    notify, session = notify_of(request), forwarded(request)
    types = await asked(notify.event_types(session))
    choice = await asked(notify.email_choice(session, member.person_id))
    saved = request.query_params.get("done") == "saved"
    return render(
        request,
        "emails.html",
        member,
        status=status,
        event_types=choosable(types),
        email=choice["email"],
        chosen=choice["event_types"] if chosen is None else chosen,
        saved=words_of(request).gettext("Your choice is saved.") if saved else None,
        errors=errors or {},
    )


@router.get("/me/emails", response_class=HTMLResponse)
async def emails_page(request: Request) -> Response:
    return await _page(request, await member_of(request))


@router.post("/me/emails", response_class=HTMLResponse)
async def choose(request: Request) -> Response:
    member = await member_of(request)
    form = await posted(request)
    chosen = [v for v in form.getlist("event_types") if isinstance(v, str)]
    try:
        await asked(notify_of(request).choose_email(forwarded(request), member.person_id, chosen))
    except NotifyRefused as exc:
        errors = exc.errors or {"form": exc.detail}
        return await _page(request, member, chosen, status=422, errors=errors)
    return redirect("/me/emails?done=saved")
