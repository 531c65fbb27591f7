"""Review's copy of an application's documents: what intake's document events change in it."""

from __future__ import annotations

from sqlmodel import Session

from services.review.store import CaseDocument, case_by_application
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
