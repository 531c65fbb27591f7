"""The web side of personal accounts, for every service with pages (review's console, and
intake's portal next): the session behind a request's cookie, CSRF tokens keyed on that
server session, the nonce of the forms shown before there is one, and what the sign-in,
sign-out, invitation and password-reset forms do. The pages themselves (templates,
redirects) stay with the service.

A refusal is an AccountError (shared/accounts/errors.py): its status for the page, its
`field` to put the message next to, and for SignInDelayed the `Retry-After`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import FormData
from starlette.responses import Response

from shared.accounts import totp
from shared.accounts.accounts import Accounts
from shared.accounts.errors import AccountError, InvalidInput, SignInDelayed
from shared.accounts.invitations import Answer, LinkSettings
from shared.accounts.models import Invitation, Person
from shared.accounts.sessions import (
    COOKIE_NAME,
    SignedIn,
    clear_session_cookie,
    is_local,
    set_session_cookie,
)
from shared.http import run_blocking
from shared.mail import MailSettings, send_message, text_message
from shared.problems import Problem

log = logging.getLogger(__name__)

# The nonce of a form shown without a session (sign-in, invitation, reset), in a cookie
# scoped to that form's path and in the form: a page of another site cannot post it.
NONCE_COOKIE = "ree_form_nonce"


class SignInRequired(Exception):
    """No valid session of the kind the page is for: the person is sent to sign in."""


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def field(form: Mapping[str, object], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


# --- the session of a request -----------------------------------------------------------------


def session_of(
    request: Request, accounts: Accounts, kind: str, cookie: str = COOKIE_NAME
) -> SignedIn:
    """The person signed in by this request's cookie (named `cookie`: each site with pages
    has its own); SignInRequired if none is (no cookie, ended, idle, too old, disabled,
    revoked, or a person of another kind)."""
    found = accounts.sessions.lookup(request.cookies.get(cookie))
    if found is None or found.kind != kind:
        raise SignInRequired
    return found


def csrf_token(key: str, session_id: str) -> str:
    """The CSRF token of a server session: it changes with every sign-in and dies with it."""
    message = b"session-csrf|" + session_id.encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def check_csrf(key: str, signed_in: SignedIn, form: FormData) -> None:
    sent = form.get("csrf")
    expected = csrf_token(key, signed_in.session_id)
    if not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise Problem(403, "Forbidden", "The form has expired or did not come from this site.")


# --- forms shown before there is a session ------------------------------------------------------


def issue_nonce(request: Request, response: Response, nonce: str) -> None:
    """Set the nonce cookie on the form's own path (every answer that shows the form again
    sets a new one on that path: a second cookie of the name elsewhere would be sent too)."""
    response.set_cookie(
        NONCE_COOKIE,
        nonce,
        httponly=True,
        samesite="strict",
        secure=not is_local(request.url.hostname),
        path=request.url.path,
    )


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def nonce_matches(request: Request, form: FormData) -> bool:
    kept = request.cookies.get(NONCE_COOKIE, "")
    return bool(kept) and hmac.compare_digest(field(form, "csrf"), kept)


def forget_nonce(request: Request, response: Response) -> None:
    response.delete_cookie(NONCE_COOKIE, path=request.url.path)


# --- what the forms do --------------------------------------------------------------------------


def retry_headers(exc: AccountError) -> dict[str, str]:
    return {"Retry-After": str(exc.retry_after)} if isinstance(exc, SignInDelayed) else {}


def sign_in(
    request: Request,
    accounts: Accounts,
    form: FormData,
    kind: str,
    response: Response,
    cookie: str = COOKIE_NAME,
) -> Person:
    """Sign in with the form's e-mail, password and code; the session's cookie goes on
    `response` (the page's redirect). AccountError if refused."""
    opened = accounts.sign_in.sign_in(
        field(form, "email"),
        field(form, "password"),
        field(form, "code"),
        client_address(request),
        kind=kind,
    )
    max_age = int(accounts.sessions.max_age.total_seconds())
    set_session_cookie(response, opened.secret, request.url.hostname, max_age, cookie)
    forget_nonce(request, response)
    return opened.person


def sign_out(
    request: Request, accounts: Accounts, response: Response, cookie: str = COOKIE_NAME
) -> None:
    """End the session of the cookie (so a copy of it stops working) and clear the cookie."""
    secret = request.cookies.get(cookie)
    if secret:
        accounts.sign_in.sign_out(secret, client_address(request))
    clear_session_cookie(response, request.url.hostname, cookie)


@dataclass(frozen=True)
class Enrolment:
    """What an invitation's page shows: who is invited, and the new factor to set up."""

    invitation: Invitation
    totp_secret: str
    qr_svg: str
    provisioning_uri: str


def enrolment(accounts: Accounts, token: str, totp_secret: str = "") -> Enrolment:
    """The open invitation of a link (LinkRefused if it is not), with a new TOTP secret, or
    the one the form sent back (a refused form keeps the factor the app has set up)."""
    invitation = accounts.invitations.pending(token)
    secret = totp_secret if totp.is_secret(totp_secret) else totp.new_secret()
    return Enrolment(
        invitation,
        secret,
        totp.qr_svg(secret, invitation.email),
        totp.provisioning_uri(secret, invitation.email),
    )


def _repeated(form: FormData) -> str:
    password = field(form, "password")
    if password != field(form, "repeat"):
        raise InvalidInput("the two passwords differ", field="repeat")
    return password


def accept(request: Request, accounts: Accounts, form: FormData) -> Person:
    """Become the invited person with the form's password, factor secret and code. The form
    always carries the secret it showed; without a code, no factor is set up (company staff
    may choose so; an official is refused: they need one)."""
    code = field(form, "code")
    answer = Answer(
        password=_repeated(form),
        totp_secret=(field(form, "totp_secret") or None) if code.strip() else None,
        code=code,
    )
    return accounts.invitations.accept(field(form, "token"), answer, client_address(request))


def reset(request: Request, accounts: Accounts, form: FormData) -> Person:
    """Set the new password of a reset link (with the person's code, if they have a factor)."""
    return accounts.invitations.reset(
        field(form, "token"), _repeated(form), field(form, "code"), client_address(request)
    )


class LinkMailSettings(MailSettings, LinkSettings):
    """Where links lead and how they are e-mailed (a service's settings include these)."""


async def request_reset(
    request: Request, accounts: Accounts, email: str, settings: LinkMailSettings
) -> None:
    """E-mail a reset link if the address is someone's (the page answers the same whether
    or not). Without SMTP the link is logged in development only: it is a password."""
    address = client_address(request)
    link = await run_blocking(accounts.invitations.request_reset, email, address)
    if link is None:
        return
    url = link.url(settings)
    mail = settings
    if mail.smtp_url:
        text = (
            f"Hello {link.invitation.name},\n\nsomeone (you, we hope) asked to reset your REE "
            f"Channel password. Open this link to choose a new one:\n\n{url}\n\n"
            f"It works once, for an hour. If it was not you, ignore this e-mail.\n"
        )
        subject = "Your REE Channel password"
        await send_message(mail, text_message(mail.smtp_from, link.invitation.email, subject, text))
    elif mail.environment == "development":
        log.warning("no REE_SMTP_URL: password reset link for %s: %s", link.invitation.email, url)
    else:
        log.warning("no REE_SMTP_URL: a password reset link could not be sent")
