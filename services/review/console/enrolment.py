"""Becoming an official by an invitation's link (password and second factor), and setting a
new password by a reset link; the logic is shared/accounts/web.py's, the pages are these."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from services.review.console.pages import redirect, router
from services.review.console.session import accounts_of
from services.review.console.sign_in import expired_form, form_page
from shared.accounts import web
from shared.accounts.errors import AccountError, LinkRefused
from shared.http import run_blocking


async def _invitation_page(
    request: Request, token: str, status: int = 200, error: AccountError | None = None, **form: str
) -> HTMLResponse:
    """The invitation's form, with the factor to set up (the one sent back, after a refusal
    that leaves the link usable); a link that is not usable is said so, and no form shown."""
    try:
        shown = await run_blocking(
            web.enrolment, accounts_of(request), token, form.get("totp_secret", "")
        )
    except LinkRefused as exc:
        return form_page(request, "invitation.html", exc.status, exc, token="", enrolment=None)
    return form_page(
        request, "invitation.html", status, error, token=token, enrolment=shown, code=""
    )


@router.get("/invitation", response_class=HTMLResponse)
async def invitation_page(request: Request, token: str = "") -> HTMLResponse:
    return await _invitation_page(request, token)


@router.post("/invitation", response_class=HTMLResponse)
async def accept_invitation(request: Request) -> Response:
    form = await request.form()
    token, secret = web.field(form, "token"), web.field(form, "totp_secret")
    if not web.nonce_matches(request, form):
        refused = AccountError("the form expired; please try again")
        return await _invitation_page(request, token, 403, refused, totp_secret=secret)
    try:
        await run_blocking(web.accept, request, accounts_of(request), form)
    except AccountError as exc:
        return await _invitation_page(request, token, exc.status, exc, totp_secret=secret)
    done = redirect("/sign-in?notice=welcome")
    web.forget_nonce(request, done)
    return done


@router.get("/forgot-password", response_class=HTMLResponse)
def forgot_password_page(request: Request) -> HTMLResponse:
    return form_page(request, "forgot_password.html")


@router.post("/forgot-password", response_class=HTMLResponse)
async def forgot_password(request: Request) -> Response:
    """The same answer whether or not the address is anyone's."""
    form = await request.form()
    if not web.nonce_matches(request, form):
        return expired_form(request, "forgot_password.html")
    settings = request.app.state.settings  # its mail and link settings (ReviewSettings)
    await web.request_reset(request, accounts_of(request), web.field(form, "email"), settings)
    return form_page(request, "forgot_password.html", sent=True)


@router.get("/reset", response_class=HTMLResponse)
def reset_page(request: Request, token: str = "") -> HTMLResponse:
    return form_page(request, "reset.html", token=token)


@router.post("/reset", response_class=HTMLResponse)
async def reset_password(request: Request) -> Response:
    form = await request.form()
    token = web.field(form, "token")
    if not web.nonce_matches(request, form):
        return expired_form(request, "reset.html", token=token)
    try:
        await run_blocking(web.reset, request, accounts_of(request), form)
    except AccountError as exc:
        return form_page(request, "reset.html", exc.status, exc, token=token)
    done = redirect("/sign-in?notice=reset")
    web.forget_nonce(request, done)
    return done
