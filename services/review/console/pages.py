"""How a console page is answered: the templates, the security headers, readable errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from services.review.api.common import casework_of, side_of
from services.review.console.session import csrf_of
from services.review.domain import errors as domain_errors
from services.review.domain.errors import UnknownState
from services.review.domain.protocol import Protocol
from services.review.problems import problem_for
from shared.directory import Principal
from shared.problems import Problem

REVIEW = Path(__file__).parent.parent
SECURITY_HEADERS = {
    # No inline script or style anywhere: charts are SVG with presentation attributes.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
# The console's one router: each page's module adds its routes (console/__init__.py imports
# them in order); included routers would hide their routes from the matrix that lists them.
router = APIRouter(include_in_schema=False)


def templates_for(protocol: Protocol) -> Jinja2Templates:
    """The console's templates, naming states in the protocol's words (its `label`s)."""
    templates = Jinja2Templates(directory=str(REVIEW / "templates"))
    templates.env.filters["state_label"] = lambda s: state_label(protocol, s)
    templates.env.filters["humanize"] = lambda s: str(s).replace("_", " ").capitalize()
    return templates


def state_label(protocol: Protocol, state: object) -> str:
    """A state's label; a code the protocol does not know is shown as it is."""
    try:
        return protocol.label("state", str(state))
    except UnknownState:
        return str(state)


def render(
    request: Request,
    template: str,
    principal: Principal | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    context.update(
        me=principal,
        side=side_of(principal) if principal else None,
        role=principal.role.value if principal and principal.role else None,
        csrf=csrf_of(request) if principal else "",
        today=casework_of(request).today(),
        path=request.url.path,
    )
    # One set per app (console.install), so that the labels are its protocol's.
    templates: Jinja2Templates = request.app.state.console_templates
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


def as_problem(exc: Problem | domain_errors.ReviewDomainError) -> Problem:
    """The problem details of a domain error, by the service's one mapping (problems.py)."""
    return exc if isinstance(exc, Problem) else problem_for(exc)


def problem_text(exc: Problem | domain_errors.ReviewDomainError) -> tuple[int, str, list[str]]:
    """A domain error or problem as (status, sentence, field messages) for a person to read."""
    problem = as_problem(exc)
    fields = [f"{e.get('field')}: {e.get('message')}" for e in problem.extra.get("errors", [])]
    return problem.status, problem.detail or problem.title, fields


def invalid_fields(exc: ValidationError) -> list[str]:
    """A request model's refusal as the field messages a page lists (the API's 422 errors)."""
    return [
        f"{'.'.join(str(part) for part in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    ]
