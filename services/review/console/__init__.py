"""The officials' web console at `/`: server-rendered pages over the same Casework engine.

One module per page's concern, each adding its routes to one router (console/pages.py):
`sign_in` (sign-in and out, accepting an invitation, resetting a password: the account
pages of shared/web/accounts.py; the session and its CSRF tokens, in `session`), `language`
(the official's language; pages are rendered in it, pages.language_of), `queue`, `case` (a
case's page and its forms, built and read back by `forms`), `lists` (priority lists),
`dashboard`, `priority` (the rules: simulate a draft, adopt it) and `reports` (the
Commission's monthly report); `pages` renders them. What a page shows is the side's view
(visibility.view_for via api.views.side_view); what it offers are exactly the actions
Casework.allowed_actions returns. The session is a person's (shared/accounts/),
rate-limited as the API's bearer is, forms are checked with the API's request models, and the
queue is the API's query (services/review/queue.py).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

# Each module adds its routes to the one router: the order of this import is theirs.
# isort: off
from services.review.console import (
    sign_in,
    language,
    queue,
    case,
    lists,
    dashboard,
    priority,
    reports,
)

# isort: on
from services.review.console.pages import (
    REVIEW,
    problem_text,
    redirect,
    render,
    router,
    templates_for,
)
from services.review.console.session import SignInRequired
from shared.accounts.sessions import COOKIE_NAME, clear_session_cookie
from shared.problems import Problem, problem_response

__all__ = ["install", "is_console_path", "router"]

API_ROOTS = frozenset({"/healthz", "/readyz", "/metrics"})

PAGES = (sign_in, language, queue, case, lists, dashboard, priority, reports)


def install(app: FastAPI) -> None:
    """Add the console's pages, its static files and the sign-in redirect to the review app."""
    app.state.console_templates = templates_for(app.state.casework.protocol)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(REVIEW / "static")), name="static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _exc: SignInRequired) -> Response:
        response = redirect("/sign-in")
        if request.cookies.get(COOKIE_NAME):
            clear_session_cookie(response, request.url.hostname)
        return response

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        if not is_console_path(request.url.path):
            return problem_response(
                exc.status, exc.title, exc.detail, exc.type, exc.headers, **exc.extra
            )
        status, message, fields = problem_text(exc)
        page = render(
            request,
            "error.html",
            None,
            status=status,
            title=exc.title,
            message=message,
            fields=fields,
        )
        page.headers.update(exc.headers or {})
        return page


def is_console_path(path: str) -> bool:
    """Pages are everything but the API and the operations routes, which answer in JSON."""
    return not (path.startswith(("/v1/", "/docs", "/openapi", "/redoc")) or path in API_ROOTS)
