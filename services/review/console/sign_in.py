"""Signing in (e-mail, password and code: shared/accounts/web.py) and out."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from services.review.console.pages import redirect, render, router, words_of
from services.review.console.session import accounts_of, posted
from services.review.console.wording import account_message
from shared.accounts import web
from shared.accounts.errors import AccountError
from shared.accounts.models import PersonKind
from shared.http import run_blocking
from shared.i18n import N_

# The notices the sign-in page shows after a redirect (translated where shown).
NOTICES = {
    "welcome": N_("Your account is ready: sign in with your e-mail, password and code."),
    "reset": N_("Your password is changed, and every session of yours ended: sign in again."),
    "out": N_("You are signed out."),
}


def form_page(
    request: Request,
    template: str,
    status: int = 200,
    error: AccountError | None = None,
    **context: object,
) -> HTMLResponse:
    """A page with a form shown before sign-in: a fresh nonce in it and in its cookie; a
    refusal's message next to its field (or above the form), Retry-After if delayed."""
    nonce = web.new_nonce()
    words = words_of(request, None)
    errors = {} if error is None else {error.field or "form": account_message(str(error), words)}
    response = render(request, template, None, status=status, nonce=nonce, errors=errors, **context)
    web.issue_nonce(request, response, nonce)
    if error is not None:
        response.headers.update(web.retry_headers(error))
    return response


def expired_form(request: Request, template: str, **context: object) -> HTMLResponse:
    refusal = AccountError("the form expired; please try again")
    return form_page(request, template, 403, refusal, **context)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, notice: str = "") -> HTMLResponse:
    return form_page(request, "sign_in.html", notice=NOTICES.get(notice))


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    form = await request.form()
    email = web.field(form, "email")
    if not web.nonce_matches(request, form):
        return expired_form(request, "sign_in.html", email=email)
    signed_in = redirect("/")
    try:
        await run_blocking(
            web.sign_in, request, accounts_of(request), form, PersonKind.official, signed_in
        )
    except AccountError as exc:
        return form_page(request, "sign_in.html", exc.status, exc, email=email)
    return signed_in


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """End the session (the form CSRF-checked) and clear its cookie; without a valid
    session there is nothing to end (SignInRequired clears the cookie all the same)."""
    await posted(request)
    signed_out = redirect("/sign-in?notice=out")
    await run_blocking(web.sign_out, request, accounts_of(request), signed_out)
    return signed_out
