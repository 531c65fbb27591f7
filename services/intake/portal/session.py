"""The portal's session: a company's staff member signed in with e-mail, password and (if
they set one up) a code, looked up on every request (shared/accounts/web.py) and
rate-limited as the company's API key is.

The same contract as the console's session (services/review/console/session.py), for
`PersonKind.staff`, under a cookie of the portal's own (`ree_portal_session`): under
`make run` the console and the portal share a host, and the two sign-ins must not replace
each other's cookie. Every form that changes something carries the CSRF token of the
server session.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import FormData

from shared.accounts import web
from shared.accounts.accounts import Accounts
from shared.accounts.models import PersonKind, StaffRole
from shared.accounts.sessions import PORTAL_COOKIE_NAME as COOKIE_NAME
from shared.accounts.sessions import SignedIn
from shared.accounts.web import SignInRequired
from shared.directory import Directory
from shared.http import within_rate_limit

__all__ = [
    "COOKIE_NAME",
    "Member",
    "SignInRequired",
    "accounts_of",
    "csrf_of",
    "member_if_signed_in",
    "posted",
    "posted_form",
    "signed_in",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Member:
    """A company's staff member signed in to the portal."""

    person_id: str
    name: str
    email: str
    company_id: str
    company_name: str
    role: StaffRole
    session_id: str

    @property
    def is_admin(self) -> bool:
        return self.role == StaffRole.admin


def accounts_of(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


def _key(request: Request) -> str:
    return str(request.app.state.settings.token_secret)


def _session(request: Request) -> SignedIn:
    known: SignedIn | None = getattr(request.state, "session", None)
    if known is None:
        request.state.session_looked_up = True
        known = web.session_of(request, accounts_of(request), PersonKind.staff, COOKIE_NAME)
        request.state.session = known
    return known


def signed_in(request: Request) -> Member:
    """The staff member whose session this is; SignInRequired when there is none valid."""
    person = _session(request)
    within_rate_limit(request, person.session_id)
    return _member(request, person)


def member_if_signed_in(request: Request) -> Member | None:
    """The member of this request's session, for a page shown whoever asks (an error's):
    its navigation is theirs. The session a page looked up already is taken as it is (a
    lookup that refused is not tried again), and the request is not counted again against
    the rate limit. A lookup that fails is None, a page without navigation: an error page
    must not fail in turn (the database it needs may be what failed)."""
    looked_up = getattr(request.state, "session_looked_up", False)
    if looked_up and getattr(request.state, "session", None) is None:
        return None  # refused once in this request: not asked again
    try:
        return _member(request, _session(request))
    except SignInRequired:
        return None
    except SQLAlchemyError as exc:
        log.warning("a page without navigation: the session could not be read (%s)", exc)
        return None


def _member(request: Request, person: SignedIn) -> Member:
    company_id = person.company_id or ""  # a staff member's person has a company
    directory: Directory = request.app.state.directory
    company = directory.company(company_id)
    return Member(
        person.person_id,
        person.name,
        person.email,
        company_id,
        company.name if company else "",
        StaffRole(person.role),
        person.session_id,
    )


def csrf_of(request: Request) -> str:
    """The CSRF token of this request's session ("" without one)."""
    known: SignedIn | None = getattr(request.state, "session", None)
    return web.csrf_token(_key(request), known.session_id) if known else ""


async def posted(request: Request) -> FormData:
    """The posted form (multipart too), refused (403) unless its CSRF token is this
    session's; without a session, SignInRequired."""
    form = await request.form()
    web.check_csrf(_key(request), _session(request), form)
    return form


async def posted_form(request: Request) -> dict[str, str]:
    """The posted form's text fields, once its CSRF token is checked."""
    form = await posted(request)
    return {k: v for k, v in form.items() if isinstance(v, str)}
