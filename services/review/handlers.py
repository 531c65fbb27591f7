"""Review's subscribers: cases open and move on the applicant's events from intake."""

from __future__ import annotations

from sqlmodel import Session

from services.review.documents import forget_document
from services.review.service import Casework
from services.review.store import load_cases
from shared.consumer import Handler, Prepare
from shared.events import (
    ApplicationSubmitted,
    ApplicationWithdrawn,
    CloudEvent,
    DocumentAdded,
    InformationAnswered,
    data_values,
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
        "application.document_deleted": forget_document,
        "application.information_answered": answered,
        "application.withdrawn": withdrawn,
    }


def prepare_read(casework: Casework) -> Prepare:
    """Before a read's handlers: its cases in one query, its new applicants' companies in one."""

    def prepare(session: Session, events: list[CloudEvent]) -> None:
        load_cases(session, data_values(events, "application_id"))
        casework.directory.load_companies(
            data_values([e for e in events if e.type == "application.submitted"], "company_id")
        )

    return prepare
