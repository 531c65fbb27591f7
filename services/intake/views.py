"""What intake answers and emits for a new application, built without I/O.

The response models of the routes, and the hot path of POST /v1/applications: its
application.submitted event and its answer, built as plain JSON from the validated body
(unit tests check them against the pydantic models they stand for).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from services.intake import domain
from shared import tracing
from shared.events import SCHEMA_VERSION, DocumentRef

SOURCE = "reechannel/intake"
SUBMITTED = "application.submitted"
RECEIVED = "application.received"


# --- response shapes -------------------------------------------------------------------------


class InformationRequestView(BaseModel):
    id: str
    question: str
    status: str
    due: date
    requested_at: datetime
    answered_at: datetime | None = None


class DocumentView(DocumentRef):
    uploaded_at: datetime


class TimelineView(BaseModel):
    at: datetime
    type: str
    status: str | None
    detail: dict[str, Any]


class ApplicationSummary(BaseModel):
    id: str
    reference: str
    status: str
    mofcom_application_number: str
    licence_type: str
    priority_tier: str | None
    expected_decision_date: date | None
    submitted_at: datetime
    updated_at: datetime


class ApplicationView(ApplicationSummary):
    point_of_contact: dict[str, Any] | None
    information_requests: list[InformationRequestView]
    documents: list[DocumentView]
    licence: dict[str, Any] | None
    decision: dict[str, Any] | None
    timeline: list[TimelineView]
    application: dict[str, Any]


class ApplicationPage(BaseModel):
    items: list[ApplicationSummary]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page")
    limit: int


# --- a new application ------------------------------------------------------------------------


@dataclass(frozen=True)
class NewApplication:
    """What the route decided before anything is written (ids, time, content, fingerprint)."""

    id: str
    company_id: str
    content: dict[str, Any]
    now: datetime
    event_id: str
    idempotency_key: str | None
    fingerprint: str


@dataclass(frozen=True)
class EarlierRequest:
    """The Idempotency-Key was used before: which application it made, for which body."""

    application_id: str
    fingerprint: str


# Given the reference number, the event's stream fields as JSON text (outbox.fields_json).
EventFields = Callable[[str], str]


def submitted_event_fields(new: NewApplication) -> EventFields:
    """The application.submitted event of a new application, as the outbox stores it.

    The same fields as `new_event(..., ApplicationSubmitted(...)).to_fields()` (a unit test
    compares them), built from the body already validated instead of validating it again.
    """

    def build(reference: str) -> str:
        data = {
            "application_id": new.id,
            "reference": reference,
            "company_id": new.company_id,
            "submitted_at": _json_time(new.now),
            "status": domain.INITIAL_STATUS,
            "application": new.content,
        }
        fields = {
            "specversion": "1.0",
            "id": new.event_id,
            "source": SOURCE,
            "type": SUBMITTED,
            "subject": new.id,
            "time": new.now.isoformat(),
            "datacontenttype": "application/json",
            "schemaversion": SCHEMA_VERSION,
            # allow_nan=False: a number JSON cannot carry fails here, before the commit, and
            # the answer (built from the same content after it) cannot fail (finding F2).
            "data": json.dumps(data, separators=(",", ":"), default=str, allow_nan=False),
        }
        if traceparent := tracing.current_traceparent():
            fields["traceparent"] = traceparent  # as shared/outbox.py's add_event stamps it
        return json.dumps(fields)

    return build


def first_view(new: NewApplication, reference: str) -> dict[str, Any]:
    """The answer to a new application, as `ApplicationView` serialises it (a test compares).

    It has no requests for information and no documents yet, and one timeline entry; it is
    built from what was just written, without reading it back or building pydantic models.
    """
    at = _json_time(new.now)
    return {
        "id": new.id,
        "reference": reference,
        "status": domain.INITIAL_STATUS,
        "mofcom_application_number": new.content["mofcom_application_number"],
        "licence_type": new.content["licence_type"],
        "priority_tier": None,
        "expected_decision_date": None,
        "submitted_at": at,
        "updated_at": at,
        "point_of_contact": None,
        "information_requests": [],
        "documents": [],
        "licence": None,
        "decision": None,
        "timeline": [{"at": at, "type": RECEIVED, "status": domain.INITIAL_STATUS, "detail": {}}],
        "application": new.content,
    }


def _json_time(value: datetime) -> str:
    # How pydantic writes an aware UTC datetime in JSON mode: ISO 8601 with "Z".
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
