"""The one place review's domain errors become RFC 9457 problem details.

The domain and the service layer raise `ReviewDomainError`s that know nothing of HTTP;
this table gives each its status, title and problem type, and `install` answers them for
the whole app. Bodies are the ones the API has always sent for these errors.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response

from services.review.domain import errors
from shared.problems import Problem, problem_response

__all__ = ["install", "problem_for"]

_Make = Callable[[errors.ReviewDomainError], Problem]


def _field_errors(exc: errors.ReviewDomainError) -> list[dict[str, str]]:
    as_dicts = getattr(exc, "as_dicts", None)
    return as_dicts() if as_dicts is not None else []


def _as(status: int, title: str, type_: str, *, fields: bool = False) -> _Make:
    """A rule: the error's message as the detail, with its field errors where it has them."""

    def make(exc: errors.ReviewDomainError) -> Problem:
        if fields:
            return Problem(status, title, str(exc), type_=type_, errors=_field_errors(exc))
        return Problem(status, title, str(exc), type_=type_)

    return make


def _unknown_action(exc: errors.ReviewDomainError) -> Problem:
    # The action is a field of the request body: name it, as a validation error does.
    return Problem(
        422,
        "Validation failed",
        str(exc),
        type_="validation-failed",
        errors=[{"field": "action", "message": str(exc)}],
    )


# First match wins: subclasses (ActionNotAllowedForTier, InvalidLicence) before their bases.
_RULES: tuple[tuple[type[errors.ReviewDomainError] | tuple[type, ...], _Make], ...] = (
    (
        (errors.CaseNotFound, errors.ProposalNotFound, errors.DocumentNotFound),
        _as(404, "Not found", "not-found"),
    ),
    (errors.ActionForbidden, _as(403, "Forbidden", "action-forbidden")),
    (errors.NotPermitted, _as(403, "Forbidden", "forbidden")),
    (errors.ActionNotAllowedInState, _as(409, "Conflict", "action-not-allowed-in-state")),
    (errors.StaleCase, _as(409, "Conflict", "stale-version")),
    (errors.CaseConflict, _as(409, "Conflict", "conflict")),
    (errors.ProposalClosed, _as(409, "Conflict", "proposal-closed")),
    ((errors.LicenceNotActive, errors.QuantityExceeded), _as(409, "Conflict", "licence-limit")),
    (
        (
            errors.InvalidActionParameters,
            errors.InvalidRuleSet,
            errors.InvalidShipment,
            errors.InvalidAssignee,
        ),
        _as(422, "Validation failed", "validation-failed", fields=True),
    ),
    (errors.UnknownAction, _unknown_action),
)


def problem_for(exc: errors.ReviewDomainError) -> Problem:
    """The problem details a domain error is answered with (500 for one no rule names:
    UnknownState or InvalidProtocol are the service's fault, never the caller's)."""
    for kinds, make in _RULES:
        if isinstance(exc, kinds):
            return make(exc)
    return Problem(500, "Internal error", "An unexpected error occurred.", type_="internal-error")


def install(app: FastAPI) -> None:
    """Answer every domain error as problem details, through the app's Problem handler where
    one is installed (the console renders a page for its own paths), else as JSON."""

    @app.exception_handler(errors.ReviewDomainError)
    async def _domain(request: Request, exc: errors.ReviewDomainError) -> Response:
        problem = problem_for(exc)
        handler = app.exception_handlers.get(Problem)
        if handler is not None:
            response = await handler(request, problem)  # type: ignore[misc]
            assert isinstance(response, Response)
            return response
        return problem_response(
            problem.status, problem.title, problem.detail, problem.type, **problem.extra
        )
