"""What review's routers share: the app's parts, the caller's side, answers, shapes, numbers."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from services.review.audit_service import AuditKeys
from services.review.service import Casework
from shared.directory import Principal
from shared.documents import DocumentStore
from shared.http import current_official, jsonable
from shared.problems import Problem, documented_errors, forbidden, invalid

# The one router of /v1: each concern's module adds its routes to it (api/__init__.py imports
# them in the order the document lists them). A router included in another is kept apart by
# FastAPI 0.16x, so sub-routers would hide the routes from those who list them.
router = APIRouter(prefix="/v1", responses=documented_errors())
Official = Annotated[Principal, Depends(current_official)]


# --- response shapes (documentation: the views are built as dicts, per side) ----------------


class OpenShape(BaseModel):
    """A shape whose other fields depend on the caller's side (domain/visibility.py)."""

    model_config = {"extra": "allow"}


class CaseView(OpenShape):
    id: str
    reference: str
    version: int
    state: str
    allowed_actions: list[str] = Field(description="What the caller may do now")


class LicenceView(OpenShape):
    number: str
    type: str
    status: str
    remaining_kg: dict[str, str]
    shipments: list[dict[str, Any]]


def shape(model: type[BaseModel], status: int = 200) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": model}}


# --- the app's parts -----------------------------------------------------------------------


def engine_of(request: Request) -> Engine:
    return request.app.state.runtime.engine


def casework_of(request: Request) -> Casework:
    return request.app.state.casework


def document_store_of(request: Request) -> DocumentStore:
    return request.app.state.documents


def committed(request: Request) -> None:
    request.app.state.runtime.relay.wake()


def audit_keys_of(request: Request) -> AuditKeys:
    return request.app.state.audit_keys


def side_of(principal: Principal) -> Literal["EU", "CN"]:
    assert principal.side is not None
    return "EU" if principal.side.value == "EU" else "CN"


def permitted(request: Request, official: Principal, permission: str) -> bool:
    """Whether the protocol's `permissions` let this official of their side and role do it."""
    role = official.role.value if official.role is not None else None
    return casework_of(request).protocol.permits(permission, side_of(official), role)


def require(request: Request, official: Principal, permission: str, refusal: str) -> None:
    """403 with `refusal` unless the protocol gives the official `permission`."""
    if not permitted(request, official, permission):
        raise forbidden(refusal)


def respond(view: dict[str, Any], status: int = 200, version: int | None = None) -> JSONResponse:
    headers = {"ETag": f'"{version}"'} if version is not None else None
    return JSONResponse(jsonable(view), status_code=status, headers=headers)


# Versions and list numbers are PostgreSQL INTEGERs: a number beyond one is none of them, and
# binding it overflows in the database (a 500). ASCII digits only: str.isdigit() also takes
# "²" (which int() refuses) and other scripts' digits.
MAX_NUMBER = 2**31 - 1
_NUMBER = re.compile(r"[0-9]{1,10}")


def parse_number(raw: str) -> int | None:
    """A version or list number as sent in a header, form or query; None when it is none."""
    if not _NUMBER.fullmatch(raw):
        return None
    value = int(raw)
    return value if value <= MAX_NUMBER else None


def expected_version(if_match: str | None) -> int:
    """The case version an If-Match header names (428 without one, 422 for a bad one)."""
    if if_match is None:
        raise Problem(
            428,
            "Precondition required",
            "Send If-Match with the case's version (from GET /v1/cases/{id}).",
        )
    value = parse_number(if_match.strip().removeprefix("W/").strip('"'))
    if value is None:
        raise invalid([{"field": "If-Match", "message": "must be the case's version number"}])
    return value
