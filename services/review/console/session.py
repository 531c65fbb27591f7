"""The console's session: an official signed in with e-mail, password and code, looked up
on every request (shared/accounts/web.py), and rate-limited as the API's bearer is.

The session lives on the server: a request whose session ended (signed out, idle, too old,
the person disabled, the credential revoked) is sent back to sign in, whichever replica
answers. Every form that changes something carries the CSRF token of that server session,
so a page of another site cannot post on the official's behalf.
"""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import FormData

from shared.accounts import web
from shared.accounts.accounts import Accounts
from shared.accounts.models import PersonKind
from shared.accounts.sessions import SignedIn
from shared.accounts.web import SignInRequired
from shared.directory import CredentialKind, Principal, Role, Side
from shared.http import within_rate_limit

__all__ = ["SignInRequired", "accounts_of", "csrf_of", "posted", "posted_form", "signed_in"]


def accounts_of(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


def _key(request: Request) -> str:
    return str(request.app.state.settings.token_secret)


def _session(request: Request) -> SignedIn:
    known: SignedIn | None = getattr(request.state, "session", None)
    if known is None:
        known = web.session_of(request, accounts_of(request), PersonKind.official)
        request.state.session = known
    return known


def signed_in(request: Request) -> Principal:
    """The official whose session this is; SignInRequired when there is none that is valid."""
    person = _session(request)
    within_rate_limit(request, person.session_id)
    return Principal(
        CredentialKind.official,
        person.person_id,
        person.session_id,
        person.name,
        Side(person.side or ""),  # an official's person has a side (invitations.py)
        Role(person.role),
    )


def csrf_of(request: Request) -> str:
    """The CSRF token of this request's session ("" without one)."""
    known: SignedIn | None = getattr(request.state, "session", None)
    return web.csrf_token(_key(request), known.session_id) if known else ""


async def posted(request: Request) -> FormData:
    """The posted form, refused (403) unless its CSRF token is this session's; without a
    session, SignInRequired."""
    form = await request.form()
    web.check_csrf(_key(request), _session(request), form)
    return form


async def posted_form(request: Request) -> dict[str, str]:
    """The posted form's text fields, once its CSRF token is checked."""
    form = await posted(request)
    return {k: v for k, v in form.items() if isinstance(v, str)}
