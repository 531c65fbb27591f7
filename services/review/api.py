"""Review's HTTP routes: the officials' queue, case views, actions, lists, licences, audit."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from services.review import audit_service
from services.review.audit_service import AuditKeys, history_for
from services.review.casework import Casework, Who
from services.review.domain import errors as domain_errors
from services.review.domain.priority import RuleSet, SimulationCase, simulate
from services.review.domain.visibility import view_for
from services.review.store import (
    AuditRecord,
    Case,
    CaseCount,
    LicenceRecord,
    PriorityList,
    audit_of,
    documents_of,
    licence_of,
    notes_of,
    requests_of,
)
from shared.db import session_scope
from shared.directory import Principal
from shared.http import current_official, current_principal, jsonable, page_params
from shared.problems import (
    Problem,
    documented_errors,
    forbidden,
    invalid,
    not_found,
    problem_response,
)

router = APIRouter(prefix="/v1", responses=documented_errors())
Official = Annotated[Principal, Depends(current_official)]


# --- response shapes (documentation: the views are built as dicts, per side) ----------------


class _Open(BaseModel):
    """A shape whose other fields depend on the caller's side (domain/visibility.py)."""

    model_config = {"extra": "allow"}


class CaseView(_Open):
    id: str
    reference: str
    version: int
    state: str
    allowed_actions: list[str] = Field(description="What the caller may do now")


class NoteView(BaseModel):
    id: str
    visibility: str
    text: str
    at: datetime
    author: dict[str, Any]


class AuditView(BaseModel):
    """The caller's side's view chain: its entries (own seq, salt, commitments, hashes), its
    head, and an RFC 6962 inclusion proof of the case in each of the side's checkpoints."""

    case_id: str
    head: str | None
    entries: list[dict[str, Any]]
    checkpoints: list[dict[str, Any]] = []


class AuditVerification(BaseModel):
    case_id: str
    ok: bool
    entries: int
    head: str | None
    checkpoints_checked: int = 0
    first_bad_index: int | None
    entry_id: str | None
    reason: str | None


class SignedTreeHeadView(BaseModel):
    number: int
    side: str
    tree_size: int
    root_hash: str
    issued_at: str
    key_id: str
    signature: str
    algorithm: str


class CheckpointList(BaseModel):
    items: list[SignedTreeHeadView]


class AuditPublicKey(BaseModel):
    algorithm: str
    key_id: str
    public_key: str
    pem: str


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


class SimulationResult(BaseModel):
    rules_version: str
    cases_scored: int
    changes: list[dict[str, Any]]


class LicenceView(_Open):
    number: str
    type: str
    status: str
    remaining_kg: dict[str, str]
    shipments: list[dict[str, Any]]


def _shape(model: type[BaseModel], status: int = 200) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": model}}


def _engine(request: Request) -> Engine:
    return request.app.state.runtime.engine


def _casework(request: Request) -> Casework:
    return request.app.state.casework


def _committed(request: Request) -> None:
    request.app.state.runtime.relay.wake()


def _audit_keys(request: Request) -> AuditKeys:
    return request.app.state.audit_keys


def _side(principal: Principal) -> Literal["EU", "CN"]:
    assert principal.side is not None
    return "EU" if principal.side.value == "EU" else "CN"


# --- views ---------------------------------------------------------------------------------


def _official_ref(casework: Casework, official_id: str | None) -> dict[str, Any] | None:
    if official_id is None:
        return None
    official = casework.directory.official(official_id)
    return {"id": official_id, "name": official.name if official else ""}


def full_case(
    session: Session, casework: Casework, case: Case, history: list[AuditRecord] | None = None
) -> dict[str, Any]:
    """The whole case as visibility.view_for expects it; never sent as it is."""
    requests = requests_of(session, case.id)
    open_requests = [r for r in requests if r.status == "open"]
    deadlines: dict[str, Any] = {"stage_due": case.due_on}
    if case.state == "cn_review" and case.acknowledged_on is not None:
        from services.review.domain.deadlines import due_date

        deadlines["statutory_due"] = due_date(
            "cn_review",
            case.acknowledged_on,
            case.tier,
            limit="statutory",
            protocol=casework.protocol,
        )
    if open_requests:
        deadlines.update(
            answer_due=open_requests[0].due,
            reminder_due=open_requests[0].reminder_on,
            lapse_due=open_requests[0].lapse_on,
        )
    licence = licence_of(session, case.id)
    return {
        "id": case.id,
        "reference": case.reference,
        "version": case.version,
        "state": case.state,
        "submitted_at": case.submitted_at,
        "created_at": case.opened_at,
        "updated_at": case.updated_at,
        "applicant": {
            "company_id": case.company_id,
            "name": case.company_name,
            "eori": case.company_eori,
        },
        "application": case.application,
        "priority": {
            "tier": case.tier,
            "score": case.score,
            "fired": case.fired_rules,
            "rules_version": case.rules_version,
            "flags": case.flags,
            "overridden": case.tier_overridden,
            "list_number": case.list_number,
            "list_position": case.list_position,
        },
        "deadlines": deadlines,
        "expected_decision_date": case.expected_decision_date,
        "points_of_contact": {
            "EU": _official_ref(casework, case.eu_contact_id),
            "CN": _official_ref(casework, case.cn_contact_id),
        },
        "information_requests": [
            {
                "id": r.id,
                "question": r.question,
                "status": r.status,
                "due": r.due,
                "asked_by_side": r.asked_by_side,
                "asked_at": r.asked_at,
                "answer": r.answer,
                "answered_at": r.answered_at,
                "document_ids": r.document_ids,
            }
            for r in requests
        ],
        "documents": [
            {
                "id": d.id,
                "kind": d.kind,
                "filename": d.filename,
                "content_type": d.content_type,
                "size": d.size,
                "sha256": d.sha256,
                "shareable": d.shareable,
                "uploaded_at": d.uploaded_at,
            }
            for d in documents_of(session, case.id)
        ],
        "notes": [
            {
                "id": n.id,
                "visibility": n.visibility,
                "text": n.text,
                "at": n.created_at,
                "author": {"id": n.author_id, "name": n.author_name, "side": n.author_side},
            }
            for n in notes_of(session, case.id)
        ],
        "licence": casework.licence_view(session, licence) if licence else None,
        "history": [_entry(a) for a in (history or audit_of(session, case.id))],
    }


def _entry(a: AuditRecord) -> dict[str, Any]:
    return {
        "id": a.id,
        "seq": a.seq,
        "actor": {"id": a.actor_id, "side": a.actor_side, "role": a.actor_role},
        "action": a.action,
        "at": a.at,
        "from_state": a.from_state,
        "to_state": a.to_state,
        "payload": a.payload,
    }


def side_view(
    session: Session, casework: Casework, case: Case, principal: Principal
) -> dict[str, Any]:
    records = audit_of(session, case.id)
    view = view_for(_side(principal), full_case(session, casework, case, records))
    # The history a side is shown is its own view chain: its seq, its hashes (F1, F6).
    view["history"] = history_for(_side(principal), records)
    view["allowed_actions"] = casework.allowed_actions(case, Who.official(principal))
    return view


def _json(view: dict[str, Any], status: int = 200, version: int | None = None) -> JSONResponse:
    headers = {"ETag": f'"{version}"'} if version is not None else None
    return JSONResponse(jsonable(view), status_code=status, headers=headers)


# --- protocol ------------------------------------------------------------------------------


@router.get("/protocol", tags=["protocol"], summary="The case-handling protocol, as data")
def get_protocol(
    request: Request, _principal: Annotated[Principal, Depends(current_principal)]
) -> dict[str, Any]:
    return _casework(request).protocol.as_document()


# --- cases ---------------------------------------------------------------------------------


class CasePage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


# Tier (P1 < P2 < P3 sort as text), then deadline with none last, then age; the id only makes
# the order total, so that offset pages neither repeat nor skip a case. ix_cases_order and
# ix_cases_queue serve it, so a page does not sort the whole queue.
_CASES: Any = Case.__table__  # type: ignore[attr-defined]
QUEUE_ORDER = (
    _CASES.c.tier,
    _CASES.c.due_on.asc().nulls_last(),
    _CASES.c.opened_at,
    _CASES.c.id,
)


def counted(
    session: Session, side: str, state: str | Sequence[str] | None, tier: str | None
) -> int:
    """How many cases the queue holds, from case_counts (store.py) rather than by counting.

    `state` is one state or several (the console's "open only" is every non-final state).
    """
    query = select(func.coalesce(func.sum(CaseCount.cases), 0))
    if side == "CN":
        query = query.where(col(CaseCount.sent_to_cn).is_(True))
    if isinstance(state, str):
        query = query.where(CaseCount.state == state)
    elif state is not None:
        query = query.where(col(CaseCount.state).in_(list(state)))
    if tier:
        query = query.where(CaseCount.tier == tier)
    return int(session.exec(query).one())


# What a queue row shows, read as plain columns: no ORM object per case, and not the fired
# rules, flags or audit head of each case, which a page does not show.
_QUEUE_COLUMNS = tuple(
    _CASES.c[name]
    for name in (
        "id",
        "reference",
        "version",
        "state",
        "submitted_at",
        "updated_at",
        "application",
        "tier",
        "score",
        "list_number",
        "list_position",
        "due_on",
        "expected_decision_date",
    )
)


@router.get(
    "/cases",
    tags=["cases"],
    summary="Your side's queue: tier, then deadline, then age",
    response_model=CasePage,
)
def list_cases(
    request: Request,
    official: Official,
    state: Annotated[str | None, Query()] = None,
    tier: Annotated[Literal["P1", "P2", "P3"] | None, Query()] = None,
    assigned: Annotated[Literal["me"] | None, Query()] = None,
    limit: Annotated[int | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    settings = request.app.state.settings
    size = page_params(limit, settings.default_page_size, settings.max_page_size)
    casework = _casework(request)
    if state is not None and state not in casework.protocol.states:
        raise invalid([{"field": "state", "message": "unknown state"}])
    side = _side(official)
    c = _CASES.c
    query = sa_select(*_QUEUE_COLUMNS)
    if side == "CN":
        query = query.where(c.sent_to_cn_at.is_not(None))
    if state:
        query = query.where(c.state == state)
    if tier:
        query = query.where(c.tier == tier)
    if assigned == "me":
        contact = c.eu_contact_id if side == "EU" else c.cn_contact_id
        query = query.where(contact == official.subject_id)
    with Session(_engine(request)) as session:
        if assigned == "me":
            total = session.execute(
                sa_select(func.count()).select_from(query.subquery())
            ).scalar_one()
        else:
            total = counted(session, side, state, tier)
        rows = session.execute(query.order_by(*QUEUE_ORDER).offset(offset).limit(size)).all()
    today = casework.today()
    items = []
    for case in rows:
        summary = view_for(
            side,
            {
                "id": case.id,
                "reference": case.reference,
                "version": case.version,
                "state": case.state,
                "submitted_at": case.submitted_at,
                "updated_at": case.updated_at,
                "application": case.application,
                "priority": {
                    "tier": case.tier,
                    "score": case.score,
                    "list_number": case.list_number,
                    "list_position": case.list_position,
                },
                "deadlines": {"stage_due": case.due_on},
                "expected_decision_date": case.expected_decision_date,
            },
        )
        summary["overdue"] = case.due_on is not None and case.due_on < today
        items.append(summary)
    # A CasePage, answered directly: FastAPI would validate and serialise the page again.
    return _json({"items": items, "total": int(total), "limit": size, "offset": offset})


@router.get(
    "/cases/{case_id}",
    tags=["cases"],
    summary="Your side's view of one case",
    responses=_shape(CaseView),
)
def get_case(case_id: str, request: Request, official: Official) -> JSONResponse:
    casework = _casework(request)
    with Session(_engine(request)) as session:
        case = casework.get_for(session, case_id, _side(official))
        return _json(side_view(session, casework, case, official), version=case.version)


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


def _expected_version(if_match: str | None) -> int:
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


@router.post(
    "/cases/{case_id}/actions",
    tags=["cases"],
    summary="Take a protocol action on a case",
    responses={
        **_shape(CaseView),
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
    expected = _expected_version(if_match)
    casework = _casework(request)
    with session_scope(_engine(request)) as session:
        case = casework.get_for(session, case_id, _side(official))
        casework.act(session, case, Who.official(official), action, params, expected)
        session.flush()
        view = side_view(session, casework, case, official)
    _committed(request)
    return _json(view, version=view.get("version"))


class NoteBody(BaseModel):
    model_config = {"extra": "forbid"}

    text: str = Field(min_length=1, max_length=10_000)
    visibility: Literal["joint", "side"]


@router.post(
    "/cases/{case_id}/notes",
    tags=["cases"],
    status_code=201,
    summary="Add a note",
    responses=_shape(NoteView, 201),
)
def add_note(case_id: str, body: NoteBody, request: Request, official: Official) -> JSONResponse:
    casework = _casework(request)
    with session_scope(_engine(request)) as session:
        case = casework.get_for(session, case_id, _side(official))
        note = casework.add_note(session, case, Who.official(official), body.text, body.visibility)
        result = {
            "id": note.id,
            "visibility": note.visibility,
            "text": note.text,
            "at": note.created_at,
            "author": {"id": note.author_id, "name": note.author_name, "side": note.author_side},
        }
    return _json(result, status=201)


class AssignBody(BaseModel):
    model_config = {"extra": "forbid"}

    official_id: str | None = Field(None, description="Omit to take the case yourself")


@router.post(
    "/cases/{case_id}/assign",
    tags=["cases"],
    summary="Take a case or give it",
    responses=_shape(CaseView),
)
def assign(
    case_id: str, request: Request, official: Official, body: AssignBody | None = None
) -> JSONResponse:
    casework = _casework(request)
    with session_scope(_engine(request)) as session:
        case = casework.get_for(session, case_id, _side(official))
        casework.assign(session, case, Who.official(official), body.official_id if body else None)
        session.flush()
        view = side_view(session, casework, case, official)
    _committed(request)
    return _json(view, version=case.version)


# --- audit ---------------------------------------------------------------------------------


@router.get(
    "/cases/{case_id}/audit",
    tags=["audit"],
    summary="The case's history as the caller's side sees it, with its view chain's hashes",
    responses=_shape(AuditView),
)
def get_audit(case_id: str, request: Request, official: Official) -> JSONResponse:
    casework = _casework(request)
    side = _side(official)
    with Session(_engine(request)) as session:
        case = casework.get_for(session, case_id, side)
        entries = history_for(side, audit_of(session, case.id))
        proofs = audit_service.proofs_for(session, case.id, side)
    head = entries[-1]["hash"] if entries else None
    return _json({"case_id": case_id, "head": head, "entries": entries, "checkpoints": proofs})


@router.get(
    "/cases/{case_id}/audit/verify",
    tags=["audit"],
    summary="Verify the keyed chain, the side's view chain and the side's checkpoints",
    responses=_shape(AuditVerification),
)
def verify_audit(case_id: str, request: Request, official: Official) -> JSONResponse:
    casework = _casework(request)
    side = _side(official)
    with Session(_engine(request)) as session:
        case = casework.get_for(session, case_id, side)
        return _json(audit_service.verify_case(session, case, _audit_keys(request), side))


@router.get(
    "/audit/checkpoints",
    tags=["audit"],
    summary="The caller's side's signed checkpoints (tree heads over its view heads)",
    responses=_shape(CheckpointList),
)
def list_checkpoints(request: Request, official: Official) -> JSONResponse:
    with Session(_engine(request)) as session:
        rows = audit_service.checkpoints_of(session, _side(official))
        return _json({"items": [audit_service.checkpoint_view(r) for r in rows]})


@router.post(
    "/audit/checkpoints",
    tags=["audit"],
    status_code=201,
    summary="Issue a signed checkpoint now (a supervisor of either side)",
    responses=_shape(SignedTreeHeadView, 201),
)
def issue_checkpoint(request: Request, official: Official) -> JSONResponse:
    if official.role is None or official.role.value != "supervisor":
        raise forbidden("Checkpoints are issued on demand by a supervisor.")
    heads = audit_service.issue_with_retry(_engine(request), _audit_keys(request))
    _committed(request)
    own = next(h for h in heads if h["side"] == _side(official))
    return _json(own, status=201)


@router.get(
    "/audit/checkpoints/{number}",
    tags=["audit"],
    summary="One of the caller's side's signed checkpoints",
    responses=_shape(SignedTreeHeadView),
)
def get_checkpoint(
    # Bounded to the database's integer: a larger one is a 422, never a 500.
    number: Annotated[int, Path(ge=1, le=2**31 - 1)],
    request: Request,
    official: Official,
) -> JSONResponse:
    with Session(_engine(request)) as session:
        rows = audit_service.checkpoints_of(session, _side(official), number)
        if not rows:
            raise not_found("checkpoint")
        return _json(audit_service.checkpoint_view(rows[0]))


@router.get(
    "/audit/public-key",
    tags=["audit"],
    summary="The Ed25519 public key that verifies checkpoint signatures",
    responses=_shape(AuditPublicKey),
)
def audit_public_key(request: Request, official: Official) -> JSONResponse:
    return _json(audit_service.public_key_view(_audit_keys(request)))


# --- priority lists ------------------------------------------------------------------------


class PriorityListBody(BaseModel):
    model_config = {"extra": "forbid"}

    case_ids: list[str] | None = Field(None, min_length=1, max_length=5000)
    max_cases: int | None = Field(None, ge=1, le=5000)


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
    responses=_shape(PriorityListView, 201),
)
def issue_priority_list(
    request: Request, official: Official, body: PriorityListBody | None = None
) -> JSONResponse:
    casework = _casework(request)
    body = body or PriorityListBody()
    with session_scope(_engine(request)) as session:
        plist = casework.issue_priority_list(
            session, Who.official(official), body.case_ids, body.max_cases
        )
        session.flush()
        view = _list_view(session, plist, _side(official))
    _committed(request)
    return JSONResponse(
        content=jsonable(view),
        status_code=201,
        headers={"Location": f"/v1/priority-lists/{view['number']}"},
    )


@router.get(
    "/priority-lists",
    tags=["priority lists"],
    summary="Priority lists, newest first",
    responses=_shape(PriorityListPage),
)
def list_priority_lists(
    request: Request,
    official: Official,
    limit: Annotated[int | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    settings = request.app.state.settings
    size = page_params(limit, settings.default_page_size, settings.max_page_size)
    with Session(_engine(request)) as session:
        lists = session.exec(
            select(PriorityList)
            .order_by(col(PriorityList.number).desc())
            .offset(offset)
            .limit(size)
        ).all()
        items = [
            {"number": p.number, "issued_at": p.issued_at, "cases": len(p.case_ids)} for p in lists
        ]
    return _json({"items": items, "limit": size, "offset": offset})


@router.get(
    "/priority-lists/{number}",
    tags=["priority lists"],
    summary="One priority list",
    responses=_shape(PriorityListView),
)
def get_priority_list(
    number: Annotated[int, Path(ge=1, le=MAX_NUMBER)], request: Request, official: Official
) -> JSONResponse:
    with Session(_engine(request)) as session:
        plist = session.get(PriorityList, number)
        if plist is None:
            raise not_found("priority list")
        return _json(_list_view(session, plist, _side(official)))


# --- priority simulation -------------------------------------------------------------------


@router.post(
    "/priority/simulate",
    tags=["priority"],
    summary="Re-score the open backlog under a draft rule set (EU supervisor)",
    responses=_shape(SimulationResult),
)
def simulate_priority(
    request: Request,
    official: Official,
    draft: Annotated[dict[str, Any], Body(description="A rule set, as priority_rules.yaml")],
) -> JSONResponse:
    if _side(official) != "EU" or official.role is None or official.role.value != "supervisor":
        raise forbidden("Only an EU supervisor may simulate priority rules.")
    casework = _casework(request)
    rules = RuleSet.from_dict(draft)
    with Session(_engine(request)) as session:
        open_cases = session.exec(
            select(Case).where(
                col(Case.state).not_in(
                    [s for s in casework.protocol.states if casework.protocol.is_terminal(s)]
                ),
                col(Case.tier_overridden).is_(False),
            )
        ).all()
        changes = simulate(
            [SimulationCase(c.id, c.application, c.tier, c.score) for c in open_cases],
            rules,
            casework.today(),
        )
        references = {c.id: c.reference for c in open_cases}
    return _json(
        {
            "rules_version": rules.version,
            "cases_scored": len(open_cases),
            "changes": [{**ch.as_dict(), "reference": references[ch.case_id]} for ch in changes],
        }
    )


@router.get("/priority/rules", tags=["priority"], summary="The rule set in force (EU)")
def get_rules(request: Request, official: Official) -> dict[str, Any]:
    if _side(official) != "EU":
        raise forbidden("The priority rules are the EU side's.")
    return _casework(request).rules.as_dict()


# --- licences ------------------------------------------------------------------------------


def _licence_for(
    session: Session, number: str, official: Principal, casework: Casework
) -> LicenceRecord:
    record = session.get(LicenceRecord, number)
    if record is None:
        raise not_found("licence")
    casework.get_for(session, record.case_id, _side(official))
    return record


@router.get(
    "/licences/{number}",
    tags=["licences"],
    summary="A licence and what remains of it",
    responses=_shape(LicenceView),
)
def get_licence(number: str, request: Request, official: Official) -> JSONResponse:
    casework = _casework(request)
    with Session(_engine(request)) as session:
        record = _licence_for(session, number, official, casework)
        return _json(casework.licence_view(session, record))


class ShipmentLineBody(BaseModel):
    model_config = {"extra": "forbid"}

    line: int | None = Field(None, ge=1)
    element: str | None = Field(None, max_length=3)
    quantity_kg: float = Field(gt=0)


class ShipmentBody(BaseModel):
    model_config = {"extra": "forbid"}

    shipped_on: date
    lines: list[ShipmentLineBody] = Field(min_length=1, max_length=200)


@router.post(
    "/licences/{number}/shipments",
    tags=["licences"],
    status_code=201,
    summary="Record a shipment drawn against a licence (CN officer)",
    responses=_shape(LicenceView, 201),
)
def record_shipment(
    number: str, body: ShipmentBody, request: Request, official: Official
) -> JSONResponse:
    if _side(official) != "CN":
        raise forbidden("Shipments are recorded by the Chinese side.")
    casework = _casework(request)
    with session_scope(_engine(request)) as session:
        record = _licence_for(session, number, official, casework)
        lines = [line.model_dump(exclude_none=True) for line in body.lines]
        casework.record_shipment(session, record, Who.official(official), lines, body.shipped_on)
        session.flush()
        view = casework.licence_view(session, record)
    return _json(view, status=201)


class RevokeBody(BaseModel):
    model_config = {"extra": "forbid"}

    reason: str = Field(min_length=1, max_length=2000)


@router.post(
    "/licences/{number}/revoke",
    tags=["licences"],
    summary="Revoke a licence (CN supervisor); no further shipments",
    responses=_shape(LicenceView),
)
def revoke_licence(
    number: str, body: RevokeBody, request: Request, official: Official
) -> JSONResponse:
    if _side(official) != "CN" or official.role is None or official.role.value != "supervisor":
        raise forbidden("Licences are revoked by a CN supervisor.")
    casework = _casework(request)
    with session_scope(_engine(request)) as session:
        record = _licence_for(session, number, official, casework)
        casework.revoke_licence(session, record, Who.official(official), body.reason)
        session.flush()
        view = casework.licence_view(session, record)
    return _json(view)


# --- errors of the domain, as problem details ----------------------------------------------


def install_domain_errors(app: FastAPI) -> None:
    @app.exception_handler(domain_errors.ReviewDomainError)
    async def _domain(_: Request, exc: domain_errors.ReviewDomainError) -> JSONResponse:
        if isinstance(exc, domain_errors.ActionForbidden):
            return problem_response(403, "Forbidden", str(exc), "action-forbidden")
        if isinstance(exc, domain_errors.ActionNotAllowedInState):
            return problem_response(409, "Conflict", str(exc), "action-not-allowed-in-state")
        if isinstance(
            exc,
            domain_errors.InvalidActionParameters
            | domain_errors.InvalidRuleSet
            | domain_errors.InvalidShipment,
        ):
            return problem_response(
                422, "Validation failed", str(exc), "validation-failed", errors=exc.as_dicts()
            )
        if isinstance(exc, domain_errors.UnknownAction):
            return problem_response(
                422,
                "Validation failed",
                str(exc),
                "validation-failed",
                errors=[{"field": "action", "message": str(exc)}],
            )
        if isinstance(exc, domain_errors.LicenceNotActive | domain_errors.QuantityExceeded):
            return problem_response(409, "Conflict", str(exc), "licence-limit")
        return problem_response(500, "Internal error", "An unexpected error occurred.")
