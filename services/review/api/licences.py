"""Licences: what remains of one, the shipments drawn against it, its revocation."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from services.review.api.bodies import RevokeBody, ShipmentBody
from services.review.api.common import (
    LicenceView,
    Official,
    casework_of,
    engine_of,
    require,
    respond,
    router,
    shape,
    side_of,
)
from services.review.service import Casework, Who
from services.review.store import LicenceRecord
from shared.db import session_scope
from shared.directory import Principal
from shared.problems import not_found


def _licence_for(
    session: Session, number: str, official: Principal, casework: Casework
) -> LicenceRecord:
    record = session.get(LicenceRecord, number)
    if record is None:
        raise not_found("licence")
    casework.get_for(session, record.case_id, side_of(official))
    return record


@router.get(
    "/licences/{number}",
    tags=["licences"],
    summary="A licence and what remains of it",
    responses=shape(LicenceView),
)
def get_licence(number: str, request: Request, official: Official) -> JSONResponse:
    casework = casework_of(request)
    with Session(engine_of(request)) as session:
        record = _licence_for(session, number, official, casework)
        return respond(casework.licence_view(session, record))


@router.post(
    "/licences/{number}/shipments",
    tags=["licences"],
    status_code=201,
    summary="Record a shipment drawn against a licence (CN officer)",
    responses=shape(LicenceView, 201),
)
def record_shipment(
    number: str, body: ShipmentBody, request: Request, official: Official
) -> JSONResponse:
    require(request, official, "record_shipment", "Shipments are recorded by the Chinese side.")
    casework = casework_of(request)
    with session_scope(engine_of(request)) as session:
        record = _licence_for(session, number, official, casework)
        lines = [line.model_dump(exclude_none=True) for line in body.lines]
        casework.record_shipment(session, record, Who.official(official), lines, body.shipped_on)
        session.flush()
        view = casework.licence_view(session, record)
    return respond(view, status=201)


@router.post(
    "/licences/{number}/revoke",
    tags=["licences"],
    summary="Revoke a licence (CN supervisor); no further shipments",
    responses=shape(LicenceView),
)
def revoke_licence(
    number: str, body: RevokeBody, request: Request, official: Official
) -> JSONResponse:
    require(request, official, "revoke_licence", "Licences are revoked by a CN supervisor.")
    casework = casework_of(request)
    with session_scope(engine_of(request)) as session:
        record = _licence_for(session, number, official, casework)
        casework.revoke_licence(session, record, Who.official(official), body.reason)
        session.flush()
        view = casework.licence_view(session, record)
    return respond(view)
