"""The companies' web portal at intake's `/`: server-rendered pages over intake's service layer.

One module per page's concern, each adding its routes to one router (portal/pages.py), in
the order of `PAGES`: `sign_in` (sign-in and out, accepting an invitation, a forgotten
password; the session and its CSRF tokens in `session`), `applications` (the company's
applications), `application` (one application's page and its forms: upload, answer,
withdraw), `apply` (the new-application form; its logic in
services/intake/application_form.py), `keys` and `colleagues` (a company admin's API keys
and colleagues, shared/accounts/company.py), `hooks` (the webhook endpoints and their
delivery log, through notify's API), `emails` (the person's e-mail choices).

Every page calls services/intake/service.py as the API's routes do (never HTTP to itself,
never a second validation); a page shows the company's own applications only, and an
application of another company is "not found", as an unknown one is. The session is a
staff member's (shared/accounts/), under the portal's own cookie, rate-limited as the API
key is. The API and the operations routes keep answering in JSON.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

# Each module adds its routes to the one router: the order of this import is theirs.
# isort: off
from services.intake.portal import (
    sign_in,
    applications,
    application,
    apply,
    keys,
    colleagues,
    hooks,
    emails,
)

# isort: on
from services.intake.errors import IntakeError
from services.intake.portal.pages import INTAKE, redirect, render, router, templates
from services.intake.portal.session import COOKIE_NAME, SignInRequired, member_if_signed_in
from shared.accounts.sessions import clear_session_cookie
from shared.http import run_blocking
from shared.problems import Problem

__all__ = ["PAGES", "install", "is_portal_path", "router"]

API_ROOTS = frozenset({"/healthz", "/readyz", "/metrics"})

PAGES = (sign_in, applications, application, apply, keys, colleagues, hooks, emails)

Handler = Callable[[Request, Any], Awaitable[Response] | Response]


def install(app: FastAPI) -> None:
    """Add the portal's pages, its static files and the sign-in redirect to the intake app,
    and its error pages for the portal's paths (the API's answers stay problem details)."""
    app.state.portal_templates = templates()
    hooks.install(app, app.state.settings)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(INTAKE / "static")), name="static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _exc: SignInRequired) -> Response:
        response = redirect("/sign-in")
        if request.cookies.get(COOKIE_NAME):
            clear_session_cookie(response, request.url.hostname, COOKIE_NAME)
        return response

    for kind in (Problem, IntakeError, StarletteHTTPException):
        _page_for_portal_paths(app, kind)


def _page_for_portal_paths(app: FastAPI, kind: type[Exception]) -> None:
    """An error page for a portal path; the handler installed before (JSON problem
    details) answers the rest, and its answer is what the page says: one mapping. A
    signed-in member's error page has their navigation, as every page of theirs; what it
    says is the problem's words only (another company's application is "not found")."""
    api_answer: Handler = app.exception_handlers[kind]

    async def _answer(request: Request, exc: Exception) -> Response:
        answer = api_answer(request, exc)
        problem = await answer if isinstance(answer, Awaitable) else answer
        if not is_portal_path(request.url.path):
            return problem
        body = json.loads(bytes(problem.body))
        fields = [f"{e.get('field')}: {e.get('message')}" for e in body.get("errors", [])]
        member = await run_blocking(member_if_signed_in, request)
        page = render(
            request,
            "error.html",
            member,
            status=problem.status_code,
            title=body.get("title", ""),
            message=body.get("detail") or body.get("title", ""),
            fields=fields,
        )
        if "retry-after" in problem.headers:
            page.headers["Retry-After"] = problem.headers["retry-after"]
        return page

    app.add_exception_handler(kind, _answer)


def is_portal_path(path: str) -> bool:
    """Pages are everything but the API and the operations routes, which answer in JSON."""
    return not (path.startswith(("/v1/", "/docs", "/openapi", "/redoc")) or path in API_ROOTS)
