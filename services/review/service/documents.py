"""A case's documents as officials open them: which one a side may open, and the audit entry
every download leaves."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from services.review.domain.errors import DocumentNotFound
from services.review.domain.visibility import DOWNLOAD_ACTION, Viewer, may_open_document
from services.review.service.core import CaseworkCore
from services.review.service.who import Who
from services.review.store import Case, CaseDocument

__all__ = ["CaseDocuments", "document_entry", "document_href"]


def document_href(case_id: str, document_id: str) -> str:
    return f"/v1/cases/{case_id}/documents/{document_id}"


def document_entry(document: CaseDocument) -> dict[str, Any]:
    """A document as the full case lists it (visibility.view_for cuts it per side)."""
    return {
        "id": document.id,
        "kind": document.kind,
        "filename": document.filename,
        "content_type": document.content_type,
        "size": document.size,
        "sha256": document.sha256,
        "shareable": document.shareable,
        "uploaded_at": document.uploaded_at,
        "href": document_href(document.case_id, document.id),
    }


class CaseDocuments(CaseworkCore):
    def document_of(
        self, session: Session, case: Case, document_id: str, side: Viewer
    ) -> CaseDocument:
        """The case's document if the side may open it (the case is one the side sees);
        DocumentNotFound alike for another case's, a deleted, an unknown document and one
        the side's view does not list."""
        document = session.get(CaseDocument, document_id)
        if (
            document is None
            or document.case_id != case.id
            or not may_open_document(side, document_entry(document))
        ):
            raise DocumentNotFound()
        return document

    def record_download(
        self, session: Session, case: Case, who: Who, document: CaseDocument
    ) -> None:
        """The download as an entry of the case's audit trail: who, when (the entry's time),
        which document. A side sees it exactly when it may open the document."""
        self._lock_case(session, case)
        self._audit(
            session,
            case,
            who,
            DOWNLOAD_ACTION,
            case.state,
            case.state,
            {
                "document_id": document.id,
                "filename": document.filename,
                "sha256": document.sha256,
                "shareable": document.shareable,
            },
        )
        session.add(case)
