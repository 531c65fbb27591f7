"""The console's session: the official's token in a cookie, checked as the API checks a bearer.

The token is authenticated by the same function as the API's `Authorization: Bearer` header
(shared/http.py: the directory, then the credential's rate limit), so a revoked token, an
invalid one and a busy credential are treated alike on both. Every form that changes
something carries a CSRF token derived from the session (HMAC of the token), so a page of
another site cannot post on the official's behalf.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.datastructures import FormData

from shared.directory import CredentialKind, Principal
from shared.http import authenticated
from shared.problems import Problem

SESSION_COOKIE = "ree_console"
LOGIN_COOKIE = "ree_login_csrf"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class SignInRequired(Exception):
    """No valid console session: the official is sent to the sign-in page."""


def _secret(request: Request) -> bytes:
    return str(request.app.state.settings.token_secret).encode()


def csrf_token(request: Request, session_token: str) -> str:
    digest = hmac.new(_secret(request), b"console-csrf|" + session_token.encode(), hashlib.sha256)
    return digest.hexdigest()


def secure_cookies(request: Request) -> bool:
    """Cookies are Secure unless the console is reached over plain http on this machine."""
    return not (request.url.scheme == "http" and (request.url.hostname or "") in LOCAL_HOSTS)


def signed_in(request: Request) -> Principal:
    """The official whose session this is; SignInRequired when there is none that is valid."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired
    bearer = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
    try:
        principal = authenticated(request, bearer)
    except Problem as exc:
        if exc.status != 401:  # a 429 of the rate limit is shown as it is
            raise
        raise SignInRequired from exc
    if principal.kind != CredentialKind.official:
        raise SignInRequired
    return principal


async def posted(request: Request) -> FormData:
    """The posted form, refused unless its CSRF token matches this session."""
    form = await request.form()
    sent = form.get("csrf")
    token = request.cookies.get(SESSION_COOKIE, "")
    if (
        not token
        or not isinstance(sent, str)
        or not hmac.compare_digest(sent, csrf_token(request, token))
    ):
        raise Problem(403, "Forbidden", "The form has expired or did not come from this console.")
    return form


async def posted_form(request: Request) -> dict[str, str]:
    """The posted form's text fields, once its CSRF token is checked."""
    form = await posted(request)
    return {k: v for k, v in form.items() if isinstance(v, str)}
