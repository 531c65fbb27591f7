"""Four eyes: countersign, reject or withdraw the proposal awaiting countersignature on a case."""

from __future__ import annotations

from collections.abc import Callable
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


def _closing(verb: str) -> Callable[..., JSONResponse]:
    """The route that rejects or withdraws a proposal; nothing else changes."""

    def close(
        case_id: str,
        proposal_id: str,
        request: Request,
        official: Official,
        body: ProposalClosingBody | None = None,
    ) -> JSONResponse:
        return _close(request, official, case_id, proposal_id, verb, body)

    close.__name__ = f"{verb}_proposal"
    return close


for _verb, _summary in (
    ("reject", "Reject a proposal; nothing else changes"),
    ("withdraw", "Withdraw a proposal; nothing else changes"),
):
    router.add_api_route(
        f"/cases/{{case_id}}/proposals/{{proposal_id}}/{_verb}",
        _closing(_verb),
        methods=["POST"],
        tags=["cases"],
        summary=_summary,
        responses=_ANSWERS,
    )


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
