"""Four eyes: countersign, reject or withdraw the proposal awaiting countersignature on a case."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Request
from fastapi.responses import JSONResponse

from services.review.api.bodies import ProposalClosingBody
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
from services.review.service import Who
from shared.db import session_scope

_ANSWERS = {
    **shape(CaseView),
    403: {"description": "Not an official who may do this with the proposal"},
    404: {"description": "No such case or proposal (the other side's proposals are not there)"},
    409: {"description": "The proposal is closed, or the case changed"},
}


@router.post(
    "/cases/{case_id}/proposals/{proposal_id}/countersign",
    tags=["cases"],
    summary="Countersign a proposal: its action takes effect",
    responses={**_ANSWERS, 428: {"description": "If-Match missing"}},
)
def countersign(
    case_id: str,
    proposal_id: str,
    request: Request,
    official: Official,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> JSONResponse:
    expected = expected_version(if_match)
    casework = casework_of(request)
    with session_scope(engine_of(request)) as session:
        case = casework.get_for(session, case_id, side_of(official))
        casework.countersign(session, case, Who.official(official), proposal_id, expected)
        session.flush()
        view = side_view(session, casework, case, official)
    committed(request)
    return respond(view, version=view.get("version"))


@router.post(
    "/cases/{case_id}/proposals/{proposal_id}/reject",
    tags=["cases"],
    summary="Reject a proposal; nothing else changes",
    responses=_ANSWERS,
)
def reject(
    case_id: str,
    proposal_id: str,
    request: Request,
    official: Official,
    body: ProposalClosingBody | None = None,
) -> JSONResponse:
    return _close(request, official, case_id, proposal_id, "reject", body)


@router.post(
    "/cases/{case_id}/proposals/{proposal_id}/withdraw",
    tags=["cases"],
    summary="Withdraw a proposal; nothing else changes",
    responses=_ANSWERS,
)
def withdraw(
    case_id: str,
    proposal_id: str,
    request: Request,
    official: Official,
    body: ProposalClosingBody | None = None,
) -> JSONResponse:
    return _close(request, official, case_id, proposal_id, "withdraw", body)


def _close(
    request: Request,
    official: Official,
    case_id: str,
    proposal_id: str,
    verb: str,
    body: ProposalClosingBody | None,
) -> JSONResponse:
    casework = casework_of(request)
    reason = body.reason if body else None
    with session_scope(engine_of(request)) as session:
        case = casework.get_for(session, case_id, side_of(official))
        close = casework.reject_proposal if verb == "reject" else casework.withdraw_proposal
        close(session, case, Who.official(official), proposal_id, reason)
        session.flush()
        view = side_view(session, casework, case, official)
    return respond(view, version=view.get("version"))
