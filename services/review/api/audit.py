"""The audit routes: a side's view chain of a case, its verification, signed checkpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session

from services.review import audit_service
from services.review.api.common import (
    Official,
    audit_keys_of,
    casework_of,
    committed,
    engine_of,
    require,
    respond,
    router,
    shape,
    side_of,
)
from services.review.audit_service import history_for
from services.review.store import audit_of
from shared.problems import not_found


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


@router.get(
    "/cases/{case_id}/audit",
    tags=["audit"],
    summary="The case's history as the caller's side sees it, with its view chain's hashes",
    responses=shape(AuditView),
)
def get_audit(case_id: str, request: Request, official: Official) -> JSONResponse:
    casework = casework_of(request)
    side = side_of(official)
    with Session(engine_of(request)) as session:
        case = casework.get_for(session, case_id, side)
        entries = history_for(side, audit_of(session, case.id))
        proofs = audit_service.proofs_for(session, case.id, side)
    head = entries[-1]["hash"] if entries else None
    return respond({"case_id": case_id, "head": head, "entries": entries, "checkpoints": proofs})


@router.get(
    "/cases/{case_id}/audit/verify",
    tags=["audit"],
    summary="Verify the keyed chain, the side's view chain and the side's checkpoints",
    responses=shape(AuditVerification),
)
def verify_audit(case_id: str, request: Request, official: Official) -> JSONResponse:
    casework = casework_of(request)
    side = side_of(official)
    with Session(engine_of(request)) as session:
        case = casework.get_for(session, case_id, side)
        return respond(audit_service.verify_case(session, case, audit_keys_of(request), side))


@router.get(
    "/audit/checkpoints",
    tags=["audit"],
    summary="The caller's side's signed checkpoints (tree heads over its view heads)",
    responses=shape(CheckpointList),
)
def list_checkpoints(request: Request, official: Official) -> JSONResponse:
    with Session(engine_of(request)) as session:
        rows = audit_service.checkpoints_of(session, side_of(official))
        return respond({"items": [audit_service.checkpoint_view(r) for r in rows]})


@router.post(
    "/audit/checkpoints",
    tags=["audit"],
    status_code=201,
    summary="Issue a signed checkpoint now (a supervisor of either side)",
    responses=shape(SignedTreeHeadView, 201),
)
def issue_checkpoint(request: Request, official: Official) -> JSONResponse:
    require(
        request,
        official,
        "issue_audit_checkpoint",
        "Checkpoints are issued on demand by a supervisor.",
    )
    heads = audit_service.issue_with_retry(engine_of(request), audit_keys_of(request))
    committed(request)
    own = next(h for h in heads if h["side"] == side_of(official))
    return respond(own, status=201)


@router.get(
    "/audit/checkpoints/{number}",
    tags=["audit"],
    summary="One of the caller's side's signed checkpoints",
    responses=shape(SignedTreeHeadView),
)
def get_checkpoint(
    # Bounded to the database's integer: a larger one is a 422, never a 500.
    number: Annotated[int, Path(ge=1, le=2**31 - 1)],
    request: Request,
    official: Official,
) -> JSONResponse:
    with Session(engine_of(request)) as session:
        rows = audit_service.checkpoints_of(session, side_of(official), number)
        if not rows:
            raise not_found("checkpoint")
        return respond(audit_service.checkpoint_view(rows[0]))


@router.get(
    "/audit/public-key",
    tags=["audit"],
    summary="The Ed25519 public key that verifies checkpoint signatures",
    responses=shape(AuditPublicKey),
)
def audit_public_key(request: Request, official: Official) -> JSONResponse:
    return respond(audit_service.public_key_view(audit_keys_of(request)))
