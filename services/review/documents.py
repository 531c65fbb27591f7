"""Review's copy of an application's documents: what intake's document events change in it,
and an official opening one (the API's route and the console's hand out the same)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.review.domain.errors import CaseNotFound, DocumentNotFound
from services.review.domain.visibility import Viewer
from services.review.service import Casework, Who
from services.review.store import CaseDocument, case_by_application
from shared.db import session_scope
from shared.documents import DocumentStore, download_name
from shared.downloads import read_document
from shared.events import CloudEvent, DocumentDeleted


def forget_document(session: Session, event: CloudEvent) -> None:
    """Drop a document the applicant deleted, so neither side's case view lists it any more.

    Before the case is open the event raises and stays pending, as `application.document_added`
    does; a document already gone (the event delivered again) is nothing to do.
    """
    data = DocumentDeleted.model_validate(event.data)
    case = case_by_application(session, data.application_id)
    if case is None:
        raise LookupError(f"no case for application {data.application_id} yet")
    document = session.get(CaseDocument, data.document_id)
    if document is not None and document.case_id == case.id:
        session.delete(document)


@dataclass(frozen=True)
class Download:
    content: bytes
    filename: str
    content_type: str


def download(
    engine: Engine,
    casework: Casework,
    store: DocumentStore,
    case_id: str,
    document_id: str,
    side: Viewer,
    who: Who,
) -> Download:
    """The bytes of a document the official's side may open, read from the document store
    (never from intake's tables), with the download recorded in the case's audit trail.

    A case the side does not see is DocumentNotFound like an unknown document: one 404 for
    everything the caller may not open. The bytes are read before the case is locked for
    the audit entry; bytes that cannot be read are a 500 and leave no entry.
    """
    with session_scope(engine) as session:
        try:
            case = casework.get_for(session, case_id, side)
        except CaseNotFound:
            raise DocumentNotFound() from None
        document = casework.document_of(session, case, document_id, side)
        content = read_document(store, document.sha256)
        casework.record_download(session, case, who, document)
        return Download(
            content=content,
            filename=download_name(document.filename, document.content_type),
            content_type=document.content_type,
        )
