"""A case's page and its forms: an action, a proposal's countersignature, a note, a contact;
its documents."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from services.review.api.bodies import NoteBody, ProposalClosingBody
from services.review.api.common import casework_of, committed, engine_of, parse_number, side_of
from services.review.api.documents import hand_out
from services.review.api.views import side_view
from services.review.console.forms import action_forms, checklist_value, parse_params
from services.review.console.pages import (
    SECURITY_HEADERS,
    as_problem,
    problem_text,
    redirect,
    render,
    router,
    words_of,
)
from services.review.console.session import posted_form, signed_in
from services.review.domain import errors as domain_errors
from services.review.service import Who
from shared.db import session_scope
from shared.directory import Principal
from shared.problems import Problem


def _case_page(
    request: Request,
    principal: Principal,
    case_id: str,
    status: int = 200,
    error: tuple[str, list[str]] | None = None,
    form: Mapping[str, str] | None = None,
    done: str | None = None,
) -> HTMLResponse:
    casework = casework_of(request)
    who = Who.official(principal)
    with Session(engine_of(request)) as session:
        case = casework.get_for(session, case_id, side_of(principal))
        view = jsonable_encoder(side_view(session, casework, case, principal))
        overdue = case.due_on is not None and case.due_on < casework.today()
    forms = action_forms(
        casework,
        view.get("allowed_actions", []),
        view,
        casework.today(),
        words_of(request, principal),
    )
    if form and error:
        # Keep what the official typed, so a refused form need not be filled in again.
        for action_form in forms:
            if action_form.name == form.get("action"):
                for f in action_form.fields:
                    if f.kind == "checklist":
                        f.value = checklist_value(form, f.name)
                    elif f.name in form and f.kind != "hidden":
                        f.value = form[f.name]
    # A supervisor may give the case to another official of the side (the protocol's
    # assign_other_official); the list names them all.
    assignees = (
        sorted(casework.directory.officials(who.side), key=lambda o: o.name)
        if casework.may(who, "assign_other_official")
        else []
    )
    return render(
        request,
        "case.html",
        principal,
        status=status,
        case=view,
        overdue=overdue,
        forms=forms,
        failed_action=(form or {}).get("action") if error else None,
        error=error,
        done=done,
        assignees=assignees,
        proposal_labels={
            v: casework.protocol.label("proposal", v, words_of(request, principal).lang)
            for v in casework.protocol.proposals
        },
    )


def _refused(
    request: Request,
    principal: Principal,
    case_id: str,
    exc: domain_errors.ReviewDomainError | Problem,
    form: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The case page with the refusal's message (a 404 stays a 404: the case is not there)."""
    if as_problem(exc).status == 404:
        raise exc
    status, message, fields = problem_text(exc)
    return _case_page(request, principal, case_id, status, (message, fields), form)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(case_id: str, request: Request) -> HTMLResponse:
    principal = signed_in(request)
    done = request.query_params.get("done")
    # What was just done, as the redirect after a form says: an action, a note, an assignment.
    protocol = casework_of(request).protocol
    proposal_done = {f"proposal-{verb}" for verb in protocol.proposals}
    known = done in protocol.actions or done in {"note", "assigned", "proposed", *proposal_done}
    return _case_page(request, principal, case_id, done=done if known else None)


@router.get("/cases/{case_id}/documents/{document_id}", response_class=Response)
def case_document(case_id: str, document_id: str, request: Request) -> Response:
    """The API's download under the console session: the same rules, the same audit entry."""
    response = hand_out(request, signed_in(request), case_id, document_id)
    response.headers.update(SECURITY_HEADERS)
    return response


@router.post("/cases/{case_id}/actions", response_class=HTMLResponse)
async def case_action(case_id: str, request: Request) -> Response:
    principal = signed_in(request)
    form = await posted_form(request)
    action = form.get("action", "")
    casework = casework_of(request)
    who = Who.official(principal)
    version = parse_number(form.get("version", "").strip())
    if version is None:
        return _case_page(
            request,
            principal,
            case_id,
            422,
            ("The form lacks the case version; reload the page.", []),
        )
    try:
        spec = casework.protocol.actions.get(action)
        if spec is None:
            raise domain_errors.UnknownAction(action)
        params = parse_params(spec.params, form)
        with session_scope(engine_of(request)) as session:
            case = casework.get_for(session, case_id, side_of(principal))
            if action == "issue_priority_list":
                # A single-case list goes through the same engine method as the lists page.
                if case.version != version:
                    raise Problem(
                        409,
                        "Conflict",
                        "The case has changed since you read it; reload and try again.",
                    )
                casework.issue_priority_list(session, who, [case.id], None)
            else:
                casework.act(session, case, who, action, params, version)
    except (domain_errors.ReviewDomainError, Problem) as exc:
        return _refused(request, principal, case_id, exc, form)
    committed(request)
    proposed = spec.countersign is not None
    return redirect(f"/cases/{case_id}?done={'proposed' if proposed else action}")


@router.post("/cases/{case_id}/notes", response_class=HTMLResponse)
async def case_note(case_id: str, request: Request) -> Response:
    principal = signed_in(request)
    form = await posted_form(request)
    try:
        # The API's note body: the same limits on the text, the same visibilities.
        note = NoteBody(text=form.get("text", "").strip(), visibility=form.get("visibility", ""))
    except ValidationError:
        return _case_page(
            request,
            principal,
            case_id,
            422,
            ("A note needs text (up to 10,000 characters) and a visibility.", []),
        )
    casework = casework_of(request)
    with session_scope(engine_of(request)) as session:
        case = casework.get_for(session, case_id, side_of(principal))
        casework.add_note(session, case, Who.official(principal), note.text, note.visibility)
    return redirect(f"/cases/{case_id}?done=note")


@router.post("/cases/{case_id}/assign", response_class=HTMLResponse)
async def case_assign(case_id: str, request: Request) -> Response:
    principal = signed_in(request)
    form = await posted_form(request)
    official_id = form.get("official_id", "").strip() or None
    casework = casework_of(request)
    try:
        with session_scope(engine_of(request)) as session:
            case = casework.get_for(session, case_id, side_of(principal))
            casework.assign(session, case, Who.official(principal), official_id)
    except (domain_errors.ReviewDomainError, Problem) as exc:
        return _refused(request, principal, case_id, exc)
    committed(request)
    return redirect(f"/cases/{case_id}?done=assigned")


@router.post("/cases/{case_id}/proposals/{proposal_id}/{verb}", response_class=HTMLResponse)
async def case_proposal(case_id: str, proposal_id: str, verb: str, request: Request) -> Response:
    """Countersign, reject or withdraw the case's pending proposal (four eyes)."""
    principal = signed_in(request)
    form = await posted_form(request)
    casework = casework_of(request)
    if verb not in casework.protocol.proposals:
        raise Problem(404, "Not found", "No such page.")
    who = Who.official(principal)
    try:
        reason = ProposalClosingBody(reason=form.get("reason", "").strip() or None).reason
        version = parse_number(form.get("version", "").strip())
        with session_scope(engine_of(request)) as session:
            case = casework.get_for(session, case_id, side_of(principal))
            if verb == "countersign":
                casework.countersign(session, case, who, proposal_id, version)
            elif verb == "reject":
                casework.reject_proposal(session, case, who, proposal_id, reason)
            else:
                casework.withdraw_proposal(session, case, who, proposal_id, reason)
    except ValidationError:
        return _case_page(
            request, principal, case_id, 422, ("A reason is at most 2,000 characters.", [])
        )
    except (domain_errors.ReviewDomainError, Problem) as exc:
        return _refused(request, principal, case_id, exc)
    committed(request)
    return redirect(f"/cases/{case_id}?done=proposal-{verb}")
