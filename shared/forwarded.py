"""A company's staff session forwarded by another service (the portal on intake) in a header.

The portal calls another service's company routes (notify's webhook endpoints, e-mail choices)
server-side on behalf of the signed-in person. It sends the person's session secret in
`X-REE-Portal-Session`; the receiving service checks it with `Sessions.lookup` (the same one
query as the portal's own pages: ended, idle, too old, disabled or revoked is refused) and
turns it into that person's company principal with their person id and staff role.

Only this header is read, never a cookie: the services share a host, so a browser sends the
portal's cookie to every port of it; the header it cannot send without the secret, which its
scripts cannot read (HttpOnly). An API key (Bearer) keeps working as before, with every right.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials
from sqlalchemy.engine import Engine

from shared.accounts.models import PersonKind, StaffRole
from shared.accounts.sessions import Sessions, SessionSettings
from shared.directory import CredentialKind, Principal
from shared.http import bearer, current_principal, of_kind, run_blocking, within_rate_limit
from shared.problems import Problem

HEADER = "X-REE-Portal-Session"

forwarded_session = APIKeyHeader(
    name=HEADER,
    auto_error=False,
    description="A company staff member's session, forwarded server-side by the portal",
)


def accept_forwarded_sessions(
    app: FastAPI, directory_engine: Engine, settings: SessionSettings | None = None
) -> None:
    """Let the app's company routes accept the header (checked against this directory)."""
    app.state.forwarded_sessions = Sessions(directory_engine, settings)


def _refused(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def forwarded_staff(request: Request, secret: str) -> Principal:
    """The company principal of a live staff session; 401 for anything else (blocking)."""
    sessions: Sessions | None = getattr(request.app.state, "forwarded_sessions", None)
    if sessions is None:
        raise _refused(f"This service does not accept {HEADER}.")
    found = sessions.lookup(secret)
    if found is None or found.kind != PersonKind.staff.value or found.company_id is None:
        raise _refused("The forwarded session is not a live session of a company's staff.")
    within_rate_limit(request, found.session_id)
    principal = Principal(
        CredentialKind.applicant,
        found.company_id,
        found.session_id,
        found.name,
        person_id=found.person_id,
        staff_role=found.role,
    )
    request.state.principal = principal
    return principal


async def current_company(
    request: Request,
    creds: HTTPAuthorizationCredentials | None = Depends(bearer),
    forwarded: str | None = Depends(forwarded_session),
) -> Principal:
    """The company calling: by its API key, or by a staff member's forwarded session."""
    if forwarded is None:
        return of_kind(await current_principal(request, creds), CredentialKind.applicant)
    if creds is not None:
        raise Problem(400, "Bad request", f"Send either a Bearer credential or {HEADER}.")
    return await run_blocking(forwarded_staff, request, forwarded)


async def company_admin(principal: Principal = Depends(current_company)) -> Principal:
    """The company, when the caller may change what it has: an API key, or an admin's session."""
    if principal.person_id is not None and principal.staff_role != StaffRole.admin.value:
        raise Problem(403, "Forbidden", "Only the company's admins may change this.")
    return principal


def acting_for(principal: Principal, person_id: str) -> None:
    """A staff member's session acts for that person only (an API key for anyone of its
    company); 403 otherwise."""
    if principal.person_id is not None and principal.person_id != person_id:
        raise Problem(403, "Forbidden", "A person may see and choose only their own e-mail.")
