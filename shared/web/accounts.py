"""The account pages of every site where people sign in (review's console for officials,
intake's portal for company staff): sign-in and out, accepting an invitation, a forgotten
password and its reset. What the forms do is shared/accounts/web.py's; the templates are
shared/templates/ (each site's `base.html` around them); each site gives its own way of
rendering a page, its session's cookie and the kind of person who signs in
(`AccountSite`), and `add_account_pages` adds the routes to the site's router.

A form shown before sign-in carries a fresh nonce, in the form and in a cookie on the
form's path; a refusal's message goes next to its field (or above the form), in the page's
language (`account_message`), with Retry-After when sign-in is delayed.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from shared.accounts import web
from shared.accounts.accounts import Accounts
from shared.accounts.errors import AccountError, LinkRefused
from shared.http import run_blocking
from shared.i18n import DEFAULT_LANGUAGE, N_
from shared.web.pages import redirect

# The notices the sign-in page shows after a redirect (translated where shown).
NOTICES = {
    "welcome": N_("Your account is ready: sign in with your e-mail, password and code."),
    "reset": N_("Your password is changed, and every session of yours ended: sign in again."),
    "out": N_("You are signed out."),
}

# The refusals of shared/accounts that the pages before sign-in show next to their field
# (invitation, reset, sign-in), in English as the accounts word them; a page in another
# language shows the translation of the first pattern that matches (else the words as they are).
_NUMBER = re.escape("%(n)s")
ACCOUNT_MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile("^" + re.escape(message).replace(_NUMBER, r"(?P<n>\d+)") + "$"), message)
    for message in (
        N_("the form expired; please try again"),
        N_("the two passwords differ"),
        N_("the e-mail address, password or code is wrong"),
        N_("this account is disabled; ask whoever invited you"),
        N_("too many failed sign-ins; try again in %(n)s s"),
        N_("an official needs a second factor (TOTP)"),
        N_("someone has this e-mail address already"),
        N_("the person who invited is disabled"),
        N_("this account is disabled"),
        N_("the code is wrong"),
        N_("this link is not valid"),
        N_("this link has been used already"),
        N_("this link has expired; ask for a new one"),
        N_("the second factor's secret is malformed; reload the page"),
        N_("the code does not match the new second factor"),
        N_("not an e-mail address"),
        N_("the password must be at least %(n)s characters"),
        N_("the password must be at most %(n)s characters"),
        N_("the password is one of the most common passwords"),
        N_("the password must not be the e-mail address"),
    )
)


class Words(Protocol):
    """A page's language: its tag and its gettext (each site's words have these)."""

    @property
    def lang(self) -> str: ...

    @property
    def gettext(self) -> Callable[[str], str]: ...


def account_message(text: str, words: Words) -> str:
    """An account refusal (shared/accounts) in the page's language."""
    if words.lang == DEFAULT_LANGUAGE:
        return text
    for pattern, message in ACCOUNT_MESSAGES:
        if found := pattern.match(text):
            return words.gettext(message) % found.groupdict()
    return text


@dataclass(frozen=True)
class AccountSite:
    """What the account pages need of the site they are on."""

    kind: str  # PersonKind: who signs in here
    cookie: str  # the name of the site's session cookie
    # render(request, template, None, status=..., **context): a page before sign-in.
    render: Callable[..., HTMLResponse]
    words_of: Callable[[Request], Words]
    accounts_of: Callable[[Request], Accounts]
    # The posted form, its CSRF token checked against the session (SignInRequired without).
    posted: Callable[[Request], Awaitable[FormData]]
    # Where the reset link and its e-mail are set up: a LinkMailSettings (the app's settings).
    settings_of: Callable[[Request], web.LinkMailSettings]
    home: str = "/"

    def form_page(
        self,
        request: Request,
        template: str,
        status: int = 200,
        error: AccountError | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """A page with a form shown before sign-in: a fresh nonce in it and in its cookie;
        a refusal's message next to its field (or above the form), Retry-After if delayed."""
        nonce = web.new_nonce()
        words = self.words_of(request)
        errors = (
            {} if error is None else {error.field or "form": account_message(str(error), words)}
        )
        response = self.render(
            request,
            template,
            None,
            status=status,
            nonce=nonce,
            errors=errors,
            account_kind=self.kind,
            **context,
        )
        web.issue_nonce(request, response, nonce)
        if error is not None:
            response.headers.update(web.retry_headers(error))
        return response

    def expired_form(self, request: Request, template: str, **context: Any) -> HTMLResponse:
        refusal = AccountError("the form expired; please try again")
        return self.form_page(request, template, 403, refusal, **context)

    async def invitation_page(
        self,
        request: Request,
        token: str,
        status: int = 200,
        error: AccountError | None = None,
        totp_secret: str = "",
    ) -> HTMLResponse:
        """The invitation's form, with the factor to set up (the one sent back, after a
        refusal that leaves the link usable); a link that is not usable is said so, and no
        form shown."""
        try:
            shown = await run_blocking(web.enrolment, self.accounts_of(request), token, totp_secret)
        except LinkRefused as exc:
            return self.form_page(
                request, "invitation.html", exc.status, exc, token="", enrolment=None
            )
        return self.form_page(
            request, "invitation.html", status, error, token=token, enrolment=shown, code=""
        )


def add_account_pages(router: APIRouter, site: AccountSite) -> None:
    """Add the sign-in, sign-out, invitation, forgotten-password and reset routes."""

    @router.get("/sign-in", response_class=HTMLResponse)
    def sign_in_page(request: Request, notice: str = "") -> HTMLResponse:
        return site.form_page(request, "sign_in.html", notice=NOTICES.get(notice))

    @router.post("/sign-in", response_class=HTMLResponse)
    async def sign_in(request: Request) -> Response:
        form = await request.form()
        email = web.field(form, "email")
        if not web.nonce_matches(request, form):
            return site.expired_form(request, "sign_in.html", email=email)
        signed_in = redirect(site.home)
        accounts = site.accounts_of(request)
        try:
            await run_blocking(
                web.sign_in, request, accounts, form, site.kind, signed_in, site.cookie
            )
        except AccountError as exc:
            return site.form_page(request, "sign_in.html", exc.status, exc, email=email)
        return signed_in

    @router.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        """End the session (the form CSRF-checked) and clear its cookie; without a valid
        session there is nothing to end (SignInRequired clears the cookie all the same)."""
        await site.posted(request)
        signed_out = redirect("/sign-in?notice=out")
        await run_blocking(
            web.sign_out, request, site.accounts_of(request), signed_out, site.cookie
        )
        return signed_out

    @router.get("/invitation", response_class=HTMLResponse)
    async def invitation_page(request: Request, token: str = "") -> HTMLResponse:
        return await site.invitation_page(request, token)

    @router.post("/invitation", response_class=HTMLResponse)
    async def accept_invitation(request: Request) -> Response:
        form = await request.form()
        token, secret = web.field(form, "token"), web.field(form, "totp_secret")
        if not web.nonce_matches(request, form):
            refused = AccountError("the form expired; please try again")
            return await site.invitation_page(request, token, 403, refused, secret)
        try:
            await run_blocking(web.accept, request, site.accounts_of(request), form)
        except AccountError as exc:
            return await site.invitation_page(request, token, exc.status, exc, secret)
        done = redirect("/sign-in?notice=welcome")
        web.forget_nonce(request, done)
        return done

    @router.get("/forgot-password", response_class=HTMLResponse)
    def forgot_password_page(request: Request) -> HTMLResponse:
        return site.form_page(request, "forgot_password.html")

    @router.post("/forgot-password", response_class=HTMLResponse)
    async def forgot_password(request: Request) -> Response:
        """The same answer whether or not the address is anyone's."""
        form = await request.form()
        if not web.nonce_matches(request, form):
            return site.expired_form(request, "forgot_password.html")
        await web.request_reset(
            request, site.accounts_of(request), web.field(form, "email"), site.settings_of(request)
        )
        return site.form_page(request, "forgot_password.html", sent=True)

    @router.get("/reset", response_class=HTMLResponse)
    def reset_page(request: Request, token: str = "") -> HTMLResponse:
        return site.form_page(request, "reset.html", token=token)

    @router.post("/reset", response_class=HTMLResponse)
    async def reset_password(request: Request) -> Response:
        form = await request.form()
        token = web.field(form, "token")
        if not web.nonce_matches(request, form):
            return site.expired_form(request, "reset.html", token=token)
        try:
            await run_blocking(web.reset, request, site.accounts_of(request), form)
        except AccountError as exc:
            return site.form_page(request, "reset.html", exc.status, exc, token=token)
        done = redirect("/sign-in?notice=reset")
        web.forget_nonce(request, done)
        return done
