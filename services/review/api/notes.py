"""Notes on a case and its points of contact (taking a case or giving it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.review.api.bodies import AssignBody, NoteBody
from services.review.api.common import (
    CaseView,
    Official,
    casework_of,
    committed,
    engine_of,
    respond,
    router,
    shape,
    side_of,
)
from services.review.api.views import side_view
from services.review.service import Who
from shared.db import session_scope


class NoteView(BaseModel):
    id: str
    visibility: str
    text: str
    at: datetime
    author: dict[str, Any]


@router.post(
    "/cases/{case_id}/notes",
    tags=["cases"],
    status_code=201,
    summary="Add a note",
    responses=shape(NoteView, 201),
)
def add_note(case_id: str, body: NoteBody, request: Request, official: Official) -> JSONResponse:
    casework = casework_of(request)
    with session_scope(engine_of(request)) as session:
        case = casework.get_for(session, case_id, side_of(official))
        note = casework.add_note(session, case, Who.official(official), body.text, body.visibility)
        result = {
            "id": note.id,
            "visibility": note.visibility,
            "text": note.text,
            "at": note.created_at,
            "author": {"id": note.author_id, "name": note.author_name, "side": note.author_side},
        }
    return respond(result, status=201)


@router.post(
    "/cases/{case_id}/assign",
    tags=["cases"],
    summary="Take a case or give it",
    responses=shape(CaseView),
)
def assign(
    case_id: str, request: Request, official: Official, body: AssignBody | None = None
) -> JSONResponse:
    casework = casework_of(request)
    with session_scope(engine_of(request)) as session:
        case = casework.get_for(session, case_id, side_of(official))
        casework.assign(session, case, Who.official(official), body.official_id if body else None)
        session.flush()
        view = side_view(session, casework, case, official)
    committed(request)
    return respond(view, version=case.version)
