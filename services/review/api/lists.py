"""Priority lists: issuing one (the queued cases sent to China, best first) and reading them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session, col, select

from services.review.api.bodies import PriorityListBody
from services.review.api.common import (
    MAX_NUMBER,
    Official,
    casework_of,
    committed,
    engine_of,
    require,
    respond,
    router,
    shape,
    side_of,
)
from services.review.service import Who
from services.review.store import Case, PriorityList
from shared.db import session_scope
from shared.http import jsonable, page_params
from shared.problems import not_found

READ_REFUSAL = "Priority lists are read by the officials the protocol names."


class ListedCase(BaseModel):
    position: int
    case_id: str
    reference: str | None
    mofcom_application_number: str | None
    tier: str | None
    state: str | None


class PriorityListView(BaseModel):
    number: int
    issued_at: datetime
    issued_by: str
    cases: list[ListedCase]


class PriorityListSummary(BaseModel):
    number: int
    issued_at: datetime
    cases: int


class PriorityListPage(BaseModel):
    items: list[PriorityListSummary]
    limit: int
    offset: int


def _list_view(session: Session, plist: PriorityList, side: str) -> dict[str, Any]:
    cases = {
        c.id: c for c in session.exec(select(Case).where(col(Case.id).in_(plist.case_ids))).all()
    }
    return {
        "number": plist.number,
        "issued_at": plist.issued_at,
        "issued_by": plist.issued_by,
        "cases": [
            {
                "position": position,
                "case_id": cid,
                "reference": cases[cid].reference if cid in cases else None,
                "mofcom_application_number": (
                    cases[cid].application.get("mofcom_application_number")
                    if cid in cases
                    else None
                ),
                "tier": cases[cid].tier if cid in cases else None,
                "state": cases[cid].state if cid in cases else None,
            }
            for position, cid in enumerate(plist.case_ids, start=1)
        ],
    }


@router.post(
    "/priority-lists",
    tags=["priority lists"],
    status_code=201,
    summary="Send queued cases to China, best first (EU supervisor)",
    responses=shape(PriorityListView, 201),
)
def issue_priority_list(
    request: Request, official: Official, body: PriorityListBody | None = None
) -> JSONResponse:
    casework = casework_of(request)
    body = body or PriorityListBody()
    with session_scope(engine_of(request)) as session:
        plist = casework.issue_priority_list(
            session, Who.official(official), body.case_ids, body.max_cases
        )
        session.flush()
        view = _list_view(session, plist, side_of(official))
    committed(request)
    return JSONResponse(
        content=jsonable(view),
        status_code=201,
        headers={"Location": f"/v1/priority-lists/{view['number']}"},
    )


@router.get(
    "/priority-lists",
    tags=["priority lists"],
    summary="Priority lists, newest first",
    responses=shape(PriorityListPage),
)
def list_priority_lists(
    request: Request,
    official: Official,
    limit: Annotated[int | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    require(request, official, "read_priority_lists", READ_REFUSAL)
    settings = request.app.state.settings
    size = page_params(limit, settings.default_page_size, settings.max_page_size)
    with Session(engine_of(request)) as session:
        lists = session.exec(
            select(PriorityList)
            .order_by(col(PriorityList.number).desc())
            .offset(offset)
            .limit(size)
        ).all()
        items = [
            {"number": p.number, "issued_at": p.issued_at, "cases": len(p.case_ids)} for p in lists
        ]
    return respond({"items": items, "limit": size, "offset": offset})


@router.get(
    "/priority-lists/{number}",
    tags=["priority lists"],
    summary="One priority list",
    responses=shape(PriorityListView),
)
def get_priority_list(
    number: Annotated[int, Path(ge=1, le=MAX_NUMBER)], request: Request, official: Official
) -> JSONResponse:
    require(request, official, "read_priority_lists", READ_REFUSAL)
    with Session(engine_of(request)) as session:
        plist = session.get(PriorityList, number)
        if plist is None:
            raise not_found("priority list")
        return respond(_list_view(session, plist, side_of(official)))
