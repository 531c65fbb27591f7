"""Priority lists: issuing one (the queued cases sent to China, best first) and reading them,
each case as the caller's side sees it in the queue, as JSON or as a CSV file."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request
from fastapi.responses import JSONResponse, Response
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
from services.review.queue import Side, listed_cases
from services.review.service import Who
from services.review.spreadsheet import csv_document
from services.review.store import PriorityList
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
    case: dict[str, Any] | None = None


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


def list_view(session: Session, plist: PriorityList, side: Side, today: date) -> dict[str, Any]:
    """The list with its cases in list order, each as a queue row of the side (`case`)."""
    rows = listed_cases(session, side, plist.case_ids, today)
    entries = []
    for position, case_id in enumerate(plist.case_ids, start=1):
        row = rows.get(case_id)
        entries.append(
            {
                "position": position,
                "case_id": case_id,
                "reference": row["reference"] if row else None,
                "mofcom_application_number": (
                    row["application"].get("mofcom_application_number") if row else None
                ),
                "tier": row["priority"]["tier"] if row else None,
                "state": row["state"] if row else None,
                "case": row,
            }
        )
    return {
        "number": plist.number,
        "issued_at": plist.issued_at,
        "issued_by": plist.issued_by,
        "cases": entries,
    }


def _goods(case: Mapping[str, Any]) -> str:
    lines = case.get("application", {}).get("goods", [])
    fields = ("element", "form", "hs_code")
    return "; ".join(" ".join(str(g.get(k, "")) for k in fields) for g in lines)


# The file's columns: (header, what of a listed case's view it shows).
_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("position", lambda e: e["position"]),
    ("reference", lambda e: e["reference"]),
    ("mofcom_application_number", lambda e: e["mofcom_application_number"]),
    ("tier", lambda e: e["tier"]),
    ("state", lambda e: e["state"]),
    ("stage_due", lambda e: e["case"].get("deadlines", {}).get("stage_due")),
    ("expected_decision_date", lambda e: e["case"].get("expected_decision_date")),
    ("exporter", lambda e: e["case"].get("application", {}).get("exporter", {}).get("name")),
    ("exporter_uscc", lambda e: e["case"].get("application", {}).get("exporter", {}).get("uscc")),
    ("goods", lambda e: _goods(e["case"])),
)
# The EU also sees who applied; China's view has no applicant, so its file has no such column.
_EU_COLUMNS = (("company", lambda e: e["case"].get("applicant", {}).get("name")),)


def list_csv(view: Mapping[str, Any], side: Side) -> str:
    """The list as a spreadsheet: one row per case the side may see, in list order."""
    columns = _COLUMNS + (_EU_COLUMNS if side == "EU" else ())
    shown = [e for e in view["cases"] if e["case"] is not None]
    return csv_document([h for h, _ in columns], ([cell(e) for _, cell in columns] for e in shown))


def csv_answer(
    view: Mapping[str, Any], side: Side, headers: Mapping[str, str] | None = None
) -> Response:
    """The list's CSV as a download."""
    name = f"ree-priority-list-{view['number']}.csv"
    return Response(
        list_csv(view, side),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', **(headers or {})},
    )


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
        view = list_view(session, plist, side_of(official), casework.today())
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
    summary="One priority list, its cases in list order as your side sees them",
    responses={200: {"model": PriorityListView, "content": {"text/csv": {}}}},
)
def get_priority_list(
    number: Annotated[int, Path(ge=1, le=MAX_NUMBER)],
    request: Request,
    official: Official,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    require(request, official, "read_priority_lists", READ_REFUSAL)
    side = side_of(official)
    with Session(engine_of(request)) as session:
        plist = session.get(PriorityList, number)
        if plist is None:
            raise not_found("priority list")
        view = list_view(session, plist, side, casework_of(request).today())
    return csv_answer(view, side) if format == "csv" else respond(view)
