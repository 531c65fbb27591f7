"""A case's documents: the bytes of one, for the officials whose side may open it."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from services.review.api.common import (
    Official,
    casework_of,
    document_store_of,
    engine_of,
    router,
    side_of,
)
from services.review.documents import download
from services.review.service import Who
from shared.directory import Principal
from shared.downloads import ATTACHMENT, attachment


def hand_out(request: Request, official: Principal, case_id: str, document_id: str) -> Response:
    """The document as an attachment, if the official's side may open it (the API's route
    and the console's)."""
    got = download(
        engine_of(request),
        casework_of(request),
        document_store_of(request),
        case_id,
        document_id,
        side_of(official),
        Who.official(official),
    )
    return attachment(got.content, got.filename, got.content_type)


@router.get(
    "/cases/{case_id}/documents/{document_id}",
    tags=["cases"],
    summary="Download one of the case's documents (404 for one your side may not open)",
    description="Every download is an entry of the case's audit trail: who, when, which.",
    response_class=Response,
    responses=ATTACHMENT,
)
def get_document(case_id: str, document_id: str, request: Request, official: Official) -> Response:
    return hand_out(request, official, case_id, document_id)
