"""Review's subscribers: cases open and move on the applicant's events from intake."""

from __future__ import annotations

from sqlmodel import Session

from services.review.casework import Casework
from shared.consumer import Handler
from shared.events import (
    ApplicationSubmitted,
    ApplicationWithdrawn,
    CloudEvent,
    DocumentAdded,
    InformationAnswered,
)


def intake_handlers(casework: Casework) -> dict[str, Handler]:
    """Each handler runs in the consumer's transaction, which also records the event id.

    An event about an application whose case is not open yet raises, so it stays pending
    and is retried once `application.submitted` has been applied.
    """

    def submitted(session: Session, event: CloudEvent) -> None:
        casework.open_case(session, ApplicationSubmitted.model_validate(event.data))

    def document_added(session: Session, event: CloudEvent) -> None:
        casework.record_document(session, DocumentAdded.model_validate(event.data))

    def answered(session: Session, event: CloudEvent) -> None:
        casework.record_answer(session, InformationAnswered.model_validate(event.data))

    def withdrawn(session: Session, event: CloudEvent) -> None:
        casework.record_withdrawal(session, ApplicationWithdrawn.model_validate(event.data))

    return {
        "application.submitted": submitted,
        "application.document_added": document_added,
        "application.information_answered": answered,
        "application.withdrawn": withdrawn,
    }
