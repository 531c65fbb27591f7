"""The protocol, the side's queue, one case and the actions taken on it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import Session

from services.review.api.common import (
    CaseView,
    Official,
    casework_of,
    committed,
    engine_of,
    expected_version,
    respond,
    router,
    shape,
    side_of,
)
from services.review.api.views import side_view
from services.review.domain.search import InvalidSearchTerm, search_term
from services.review.queue import COUNT_CAP, QUEUE_ORDER, QueueFilter, queue_page, queue_total
from services.review.service import Who
from shared.db import session_scope, snapshot_session
from shared.directory import Principal
from shared.http import current_principal, page_params
from shared.i18n import accepted_languages, match_language
from shared.problems import invalid

# --- protocol ------------------------------------------------------------------------------


@router.get("/protocol", tags=["protocol"], summary="The case-handling protocol, as data")
def get_protocol(
    request: Request,
    _principal: Annotated[Principal, Depends(current_principal)],
    lang: Annotated[
        str | None,
        Query(
            max_length=35,
            description="Add every code's label in this language (e.g. zh-Hans); "
            "without it, the Accept-Language header's first language the protocol has",
        ),
    ] = None,
    accept_language: Annotated[str | None, Header(max_length=500)] = None,
) -> dict[str, Any]:
    protocol = casework_of(request).protocol
    if lang is not None:
        chosen = match_language(lang, protocol.languages)
        if chosen is None:
            raise invalid(
                [{"field": "lang", "message": f"must be one of {', '.join(protocol.languages)}"}]
            )
    else:
        chosen = next(
            (
                found
                for tag in accepted_languages(accept_language)
                if (found := match_language(tag, protocol.languages))
            ),
            None,
        )
    return protocol.as_document(chosen)


# --- cases ---------------------------------------------------------------------------------


class CasePage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    capped: bool = Field(
        False, description=f"A search matched more than `total` ({COUNT_CAP:,}) cases"
    )


@router.get(
    "/cases",
    tags=["cases"],
    summary="Your side's queue: tier, then deadline, then age; or a search of it",
    response_model=CasePage,
)
def list_cases(
    request: Request,
    official: Official,
    state: Annotated[str | None, Query()] = None,
    tier: Annotated[Literal["P1", "P2", "P3"] | None, Query()] = None,
    assigned: Annotated[Literal["me"] | None, Query()] = None,
    q: Annotated[
        str | None,
        Query(
            description="Reference, MOFCOM application number (or a part), exporter name or "
            "USCC, company name (EU only), HS code: 2 to 100 characters"
        ),
    ] = None,
    limit: Annotated[int | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    settings = request.app.state.settings
    size = page_params(limit, settings.default_page_size, settings.max_page_size)
    casework = casework_of(request)
    if state is not None and state not in casework.protocol.states:
        raise invalid([{"field": "state", "message": "unknown state"}])
    try:
        text = search_term(q) if q is not None else ""
    except InvalidSearchTerm as exc:
        raise invalid([{"field": "q", "message": str(exc)}]) from None
    wanted = QueueFilter(
        side=side_of(official),
        states=state,
        tier=tier,
        contact_id=official.subject_id if assigned == "me" else None,
        text=text,
    )
    with Session(engine_of(request)) as session:
        total = queue_total(session, wanted, cap=COUNT_CAP if text else None)
        items = queue_page(session, wanted, QUEUE_ORDER, offset, size, casework.today())
    # A CasePage, answered directly: FastAPI would validate and serialise the page again.
    return respond(
        {
            "items": items,
            "total": min(total, COUNT_CAP) if text else total,
            "limit": size,
            "offset": offset,
            "capped": bool(text) and total > COUNT_CAP,
        }
    )


@router.get(
    "/cases/{case_id}",
    tags=["cases"],
    summary="Your side's view of one case",
    responses=shape(CaseView),
)
def get_case(case_id: str, request: Request, official: Official) -> JSONResponse:
    casework = casework_of(request)
    # The case, its history and notes as of one moment (shared/db.py, snapshot_session).
    with snapshot_session(engine_of(request)) as session:
        case = casework.get_for(session, case_id, side_of(official))
        return respond(side_view(session, casework, case, official), version=case.version)


@router.post(
    "/cases/{case_id}/actions",
    tags=["cases"],
    summary="Take a protocol action on a case",
    responses={
        **shape(CaseView),
        403: {"description": "Wrong side or role"},
        409: {"description": "Wrong state or stale version"},
        422: {"description": "Bad parameters"},
        428: {"description": "If-Match missing"},
    },
)
def take_action(
    case_id: str,
    request: Request,
    official: Official,
    body: Annotated[dict[str, Any], Body(examples=[{"action": "admit"}])],
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> JSONResponse:
    action = body.get("action")
    if not isinstance(action, str) or not action:
        raise invalid([{"field": "action", "message": "required: the name of a protocol action"}])
    params = {k: v for k, v in body.items() if k != "action"}
    expected = expected_version(if_match)
    casework = casework_of(request)
    with session_scope(engine_of(request)) as session:
        case = casework.get_for(session, case_id, side_of(official))
        casework.act(session, case, Who.official(official), action, params, expected)
        session.flush()
        view = side_view(session, casework, case, official)
    committed(request)
    return respond(view, version=view.get("version"))
