"""RFC 9457 problem details: every error a service returns has this one shape."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_TYPE_BASE = "https://reechannel.eu/problems/"
MEDIA_TYPE = "application/problem+json"

log = logging.getLogger(__name__)


class ProblemDetails(BaseModel):
    """The body of every error answer (RFC 9457); validation errors add `errors`."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None


_DOCUMENTED = {
    400: "The body cannot be read (not UTF-8, not a form)",
    401: "No valid credential",
    403: "The credential may not do this",
    404: "No such object, or not the caller's",
    409: "Conflicts with the object's current state",
    413: "The request body is too large",
    422: "The request is not valid; `errors` names each field",
    429: "Rate limit exceeded for this credential; see Retry-After",
    503: "The database is not answering or the service is starting; see Retry-After",
}


def documented_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for error answers, as problem details (all of them by default)."""
    schema = ProblemDetails.model_json_schema()
    return {
        status: {
            "description": _DOCUMENTED[status],
            "content": {MEDIA_TYPE: {"schema": schema}},
        }
        for status in statuses or tuple(_DOCUMENTED)
    }


class Problem(Exception):
    """An error a route raises on purpose; rendered as problem details."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_ or title.lower().replace(" ", "-")
        self.headers = headers
        self.extra = extra


def not_found(what: str = "resource") -> Problem:
    return Problem(404, "Not found", f"No such {what}.")


def conflict(detail: str, **extra: Any) -> Problem:
    return Problem(409, "Conflict", detail, **extra)


def forbidden(detail: str) -> Problem:
    return Problem(403, "Forbidden", detail)


def invalid(errors: list[dict[str, str]], detail: str = "The request is not valid.") -> Problem:
    return Problem(422, "Validation failed", detail, type_="validation-failed", errors=errors)


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    type_: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (type_ or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_errors(errors: list[Any]) -> list[dict[str, str]]:
    out = []
    for err in errors:
        message = str(err.get("msg", "invalid"))
        if err.get("type") == "json_invalid":
            message = "malformed JSON: " + str(err.get("ctx", {}).get("error", ""))
        # Never echo the submitted value back: it may be another party's data.
        out.append({"field": _field(tuple(err.get("loc", ()))), "message": message})
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status, exc.title, exc.detail, exc.type, exc.headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            422,
            "Validation failed",
            "The request is not valid; see `errors`.",
            "validation-failed",
            errors=validation_errors(list(exc.errors())),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {
            400: "Bad request",
            401: "Unauthorized",
            404: "Not found",
            405: "Method not allowed",
        }
        return problem_response(
            exc.status_code,
            titles.get(exc.status_code, "Error"),
            str(exc.detail) if exc.detail else None,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OperationalError)
    async def _database_away(request: Request, exc: OperationalError) -> JSONResponse:
        # The transaction was rolled back: nothing of the request was stored.
        log.warning("%s %s: database error (%s)", request.method, request.url.path, exc.orig)
        return problem_response(
            503,
            "Service unavailable",
            "The database is not answering; nothing was stored. Try again.",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return problem_response(500, "Internal error", "An unexpected error occurred.")
