"""The priority lists pages: the lists issued and, for an EU supervisor, issuing the next; one
list's page with its cases in list order, and its CSV."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from services.review.api.bodies import PriorityListBody
from services.review.api.common import (
    casework_of,
    committed,
    engine_of,
    parse_number,
    permitted,
    require,
    side_of,
)
from services.review.api.lists import READ_REFUSAL, csv_answer, list_view
from services.review.console.pages import (
    SECURITY_HEADERS,
    invalid_fields,
    problem_text,
    redirect,
    render,
    router,
)
from services.review.console.session import posted, signed_in
from services.review.domain import errors as domain_errors
from services.review.queue import awaiting_a_list
from services.review.service import Who
from services.review.store import PriorityList
from shared.db import session_scope
from shared.directory import Principal
from shared.problems import Problem, not_found


def _lists_page(
    request: Request,
    principal: Principal,
    status: int = 200,
    error: tuple[str, list[str]] | None = None,
    issued: int | None = None,
) -> HTMLResponse:
    side = side_of(principal)
    with Session(engine_of(request)) as session:
        lists = session.exec(
            select(PriorityList).order_by(col(PriorityList.number).desc()).limit(100)
        ).all()
        queued = awaiting_a_list(session, casework_of(request).protocol) if side == "EU" else []
        rows = [
            {"number": p.number, "issued_at": p.issued_at, "cases": len(p.case_ids)} for p in lists
        ]
        queued_rows = [
            {
                "id": c.id,
                "reference": c.reference,
                "tier": c.tier,
                "due_on": c.due_on,
                "overdue": c.due_on is not None and c.due_on < casework_of(request).today(),
                "mofcom": c.application.get("mofcom_application_number"),
            }
            for c in queued
        ]
    may_issue = permitted(request, principal, "issue_priority_list")
    return render(
        request,
        "lists.html",
        principal,
        status=status,
        lists=rows,
        queued=queued_rows,
        may_issue=may_issue,
        error=error,
        issued=issued,
    )


@router.get("/priority-lists", response_class=HTMLResponse)
def lists_page(request: Request) -> HTMLResponse:
    principal = signed_in(request)
    require(request, principal, "read_priority_lists", READ_REFUSAL)
    issued = request.query_params.get("issued")
    return _lists_page(request, principal, issued=parse_number(issued) if issued else None)


def _issued_list(request: Request, principal: Principal, number: str) -> dict[str, Any]:
    """The list numbered `number` as the official's side reads it; a 404 page if none."""
    require(request, principal, "read_priority_lists", READ_REFUSAL)
    wanted = parse_number(number)
    with Session(engine_of(request)) as session:
        plist = session.get(PriorityList, wanted) if wanted else None
        if plist is None:
            raise not_found("priority list")
        return list_view(session, plist, side_of(principal), casework_of(request).today())


# Before the page's route: `{number}` alone would take "7.csv" as a number.
@router.get("/priority-lists/{number}.csv")
def list_csv_file(number: str, request: Request) -> Response:
    principal = signed_in(request)
    view = _issued_list(request, principal, number)
    return csv_answer(view, side_of(principal), SECURITY_HEADERS)


@router.get("/priority-lists/{number}", response_class=HTMLResponse)
def list_page(number: str, request: Request) -> HTMLResponse:
    principal = signed_in(request)
    plist = _issued_list(request, principal, number)
    return render(request, "list.html", principal, plist=plist)


@router.post("/priority-lists", response_class=HTMLResponse)
async def issue_list(request: Request) -> Response:
    principal = signed_in(request)
    form = await posted(request)
    raw_max = form.get("max_cases")
    try:
        # The API's list body: the same bounds on the cases named and on "at most N".
        body = PriorityListBody.model_validate(
            {
                "case_ids": [v for v in form.getlist("case_id") if isinstance(v, str)] or None,
                "max_cases": (raw_max.strip() or None) if isinstance(raw_max, str) else None,
            }
        )
    except ValidationError as exc:
        return _lists_page(
            request, principal, 422, ("Some fields need attention.", invalid_fields(exc))
        )
    casework = casework_of(request)
    try:
        with session_scope(engine_of(request)) as session:
            plist = casework.issue_priority_list(
                session, Who.official(principal), body.case_ids, body.max_cases
            )
            number = plist.number
    except (domain_errors.ReviewDomainError, Problem) as exc:
        status, message, errors = problem_text(exc)
        return _lists_page(request, principal, status, (message, errors))
    committed(request)
    return redirect(f"/priority-lists?issued={number}")
