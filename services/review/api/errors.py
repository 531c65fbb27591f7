"""The domain's errors as problem details, for every route of the service."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.review.domain import errors as domain_errors
from shared.problems import problem_response


def install_domain_errors(app: FastAPI) -> None:
    @app.exception_handler(domain_errors.ReviewDomainError)
    async def _domain(_: Request, exc: domain_errors.ReviewDomainError) -> JSONResponse:
        if isinstance(exc, domain_errors.ActionForbidden):
            return problem_response(403, "Forbidden", str(exc), "action-forbidden")
        if isinstance(exc, domain_errors.ActionNotAllowedInState):
            return problem_response(409, "Conflict", str(exc), "action-not-allowed-in-state")
        if isinstance(
            exc,
            domain_errors.InvalidActionParameters
            | domain_errors.InvalidRuleSet
            | domain_errors.InvalidShipment,
        ):
            return problem_response(
                422, "Validation failed", str(exc), "validation-failed", errors=exc.as_dicts()
            )
        if isinstance(exc, domain_errors.UnknownAction):
            return problem_response(
                422,
                "Validation failed",
                str(exc),
                "validation-failed",
                errors=[{"field": "action", "message": str(exc)}],
            )
        if isinstance(exc, domain_errors.LicenceNotActive | domain_errors.QuantityExceeded):
            return problem_response(409, "Conflict", str(exc), "licence-limit")
        return problem_response(500, "Internal error", "An unexpected error occurred.")
