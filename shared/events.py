"""The CloudEvents 1.0 envelope and the schema of every event the services exchange."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.applications import ApplicationBody
from shared.db import utcnow

INTAKE_STREAM = "intake.events"
REVIEW_STREAM = "review.events"
SCHEMA_VERSION = "1"
# W3C Trace Context, version 00: trace id and parent span id in lower-case hex, and flags.
TRACEPARENT = r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
# Who writes each stream, and which services read it (each in a consumer group of its name).
STREAM_PRODUCERS = {INTAKE_STREAM: "intake", REVIEW_STREAM: "review"}
STREAM_CONSUMERS = {INTAKE_STREAM: ("review", "notify"), REVIEW_STREAM: ("intake", "notify")}
# The CloudEvents `source` of each stream's one producer: a consumer refuses any other.
STREAM_SOURCES = {stream: f"reechannel/{service}" for stream, service in STREAM_PRODUCERS.items()}
# Bounds of the numbers events carry (an application's own are in shared/applications.py).
MAX_DOCUMENT_BYTES = 2**40
MAX_LINES = 10_000
MAX_QUANTITY_KG = 10_000_000
MAX_COUNTER = 2**63 - 1
# A code's names by language (BCP 47 tag → name, `en` always among them), as the protocol of
# the service that emits the event has them at that moment: consumers show a code by name
# without reading that service's protocol, and an event keeps the name it was decided under.
Names = dict[str, str]


class CloudEvent(BaseModel):
    """One event as it travels: every attribute a plain stream field, `data` as JSON text."""

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str
    type: str
    subject: str
    time: datetime = Field(default_factory=utcnow)
    datacontenttype: Literal["application/json"] = "application/json"
    schemaversion: str = SCHEMA_VERSION
    # The CloudEvents distributed-tracing extension: the W3C trace context of the span the
    # event was written in (shared/tracing.py); absent while tracing is off.
    traceparent: str | None = Field(default=None, max_length=55, pattern=TRACEPARENT)
    data: dict[str, Any]

    def to_fields(self) -> dict[str, str]:
        return {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": self.time.isoformat(),
            "datacontenttype": self.datacontenttype,
            "schemaversion": self.schemaversion,
            "data": json.dumps(self.data, separators=(",", ":"), default=str),
        } | ({"traceparent": self.traceparent} if self.traceparent else {})

    @classmethod
    def from_fields(cls, fields: dict[Any, Any]) -> CloudEvent:
        decoded = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in fields.items()
        }
        decoded["data"] = json.loads(decoded.get("data") or "{}")
        return cls.model_validate(decoded)

    def payload(self) -> BaseModel:
        """The typed `data` of this event, validated against its schema."""
        schema = EVENT_SCHEMAS.get(self.type)
        if schema is None:
            raise UnknownEventType(self.type)
        return schema.model_validate(self.data)


def data_values(events: list[CloudEvent], key: str) -> list[str]:
    """The string values of one `data` field across events (for a consumer's batch lookup)."""
    return [value for e in events if isinstance(value := e.data.get(key), str)]


class UnknownEventType(ValueError):
    def __init__(self, event_type: str) -> None:
        super().__init__(f"no schema for event type {event_type!r}")


class _Finite(BaseModel):
    # An event carrying Infinity or NaN (json.loads takes both) is refused, not stored: no
    # consumer could sum, sort or write such a number back as JSON (red-team finding F2).
    model_config = ConfigDict(allow_inf_nan=False)


class _EventData(_Finite):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class ApplicationRef(_EventData):
    application_id: str
    reference: str
    company_id: str


# --- intake.events ---------------------------------------------------------------------------


class ApplicationSubmitted(ApplicationRef):
    submitted_at: datetime
    status: str
    application: ApplicationBody


class DocumentRef(_Finite):
    id: str
    kind: str
    filename: str
    content_type: str
    size: int = Field(ge=0, le=MAX_DOCUMENT_BYTES)
    sha256: str
    shareable: bool


class DocumentAdded(ApplicationRef):
    document: DocumentRef


class DocumentDeleted(ApplicationRef):
    """The applicant deleted a document no answer referred to, before the decision."""

    document_id: str
    deleted_at: datetime


class InformationAnswered(ApplicationRef):
    request_id: str
    answer: str
    document_ids: list[str] = []
    answered_at: datetime


class ApplicationWithdrawn(ApplicationRef):
    withdrawn_at: datetime
    reason: str | None = None


# --- review.events ---------------------------------------------------------------------------


class Contact(_Finite):
    id: str
    name: str
    side: str


class InformationRequestRef(_Finite):
    id: str
    question: str
    due: date
    status: str = "open"


class CaseRef(ApplicationRef):
    case_id: str


class CaseOpened(CaseRef):
    state: str
    priority_tier: str
    expected_decision_date: date | None = None
    point_of_contact: Contact | None = None


class CaseStateChanged(CaseRef):
    action: str
    from_state: str
    to_state: str
    priority_tier: str | None = None
    expected_decision_date: date | None = None
    point_of_contact: Contact | None = None


class CaseInformationRequested(CaseRef):
    request: InformationRequestRef


class CaseInformationReminder(CaseRef):
    """The answer to a request for information is due soon (the protocol's reminder day)."""

    request: InformationRequestRef


class CaseAcknowledged(CaseRef):
    """MOFCOM accepted the file: the statutory clock runs from `accepted_on`."""

    state: str
    accepted_on: date
    statutory_due_date: date | None = None
    expected_decision_date: date | None = None


class CasePriorityChanged(CaseRef):
    priority_tier: str
    expected_decision_date: date | None = None


class CaseWithdrawalTooLate(CaseRef):
    """The applicant's withdrawal reached a case already decided: the decision stands."""

    decision: Literal["approved", "refused", "not_admitted", "lapsed", "withdrawn"]
    withdrawn_at: datetime


class CaseAssigned(CaseRef):
    side: str
    point_of_contact: Contact | None = None


class CaseDecided(CaseRef):
    decision: Literal["approved", "refused", "not_admitted", "lapsed", "withdrawn"]
    reason: str | None = None
    reason_label: Names | None = Field(
        default=None,
        description="The reason code's name in each language (review's protocol,"
        " labels.reason_codes of the deciding action), as it was when the case was decided;"
        " absent from older events and for a code without a label: show the code.",
        examples=[
            {"en": "Quantity not justified by the end use", "zh-Hans": "数量与所述最终用途不符"}
        ],
    )
    detail: str | None = None


class LicenceLine(_Finite):
    line: int = Field(ge=0, le=MAX_LINES)
    element: str
    form: str
    hs_code: str | None = None
    approved_quantity_kg: float = Field(ge=0, le=MAX_QUANTITY_KG)


class LicenceRef(_Finite):
    number: str
    type: str
    type_label: Names | None = Field(
        default=None,
        description="The licence type's name in each language (review's protocol,"
        " labels.licence_types), as it was when the licence was issued; absent from older"
        " events: show the code.",
        examples=[{"en": "Annual licence", "zh-Hans": "年度出口许可证"}],
    )
    valid_from: date
    valid_until: date
    status: str
    lines: list[LicenceLine] = []


class LicenceIssued(CaseRef):
    licence: LicenceRef


class LicenceRevoked(CaseRef):
    """China revoked the licence: no further shipments may be drawn against it."""

    number: str
    revoked_on: date


class ShippedLine(_Finite):
    """What one shipment drew against one key of the licence: a line, or (a general
    licence) an element, with its form when the key is a line."""

    line: int | None = Field(default=None, ge=0, le=MAX_LINES)
    element: str
    form: str | None = None
    quantity_kg: float = Field(ge=0, le=MAX_QUANTITY_KG)


class RemainingLine(_Finite):
    """What remains of the licence on one key after the shipment (never below zero)."""

    line: int | None = Field(default=None, ge=0, le=MAX_LINES)
    element: str
    form: str | None = None
    remaining_kg: float = Field(ge=0, le=MAX_QUANTITY_KG)


class LicenceShipmentRecorded(CaseRef):
    """China recorded a shipment against the licence: its date, lines and what remains.

    Allow-listed: no official, no recording time; the applicant sees what its licence
    already shows (lines, approved quantities) and the draw-down of it."""

    number: str
    shipment_id: str
    shipped_on: date
    status: str
    lines: list[ShippedLine] = Field(max_length=MAX_LINES)
    remaining: list[RemainingLine] = Field(max_length=MAX_LINES)


class PriorityListIssued(_EventData):
    number: int = Field(ge=0, le=MAX_COUNTER)
    case_ids: list[str]
    application_ids: list[str] = []
    issued_at: datetime


class CaseDeadlineBreached(CaseRef):
    stage: str
    due: date


class SignedTreeHead(BaseModel):
    """One side's checkpoint: the Merkle root over its view heads, signed (Ed25519)."""

    number: int
    side: str
    tree_size: int
    root_hash: str
    issued_at: datetime
    key_id: str
    signature: str


class AuditCheckpointIssued(_EventData):
    """Review signed a checkpoint of every case's audit heads, one tree head per side."""

    number: int
    issued_at: datetime
    tree_heads: list[SignedTreeHead]


EVENT_SCHEMAS: dict[str, type[BaseModel]] = {
    "application.submitted": ApplicationSubmitted,
    "application.document_added": DocumentAdded,
    "application.document_deleted": DocumentDeleted,
    "application.information_answered": InformationAnswered,
    "application.withdrawn": ApplicationWithdrawn,
    "case.opened": CaseOpened,
    "case.state_changed": CaseStateChanged,
    "case.information_requested": CaseInformationRequested,
    "case.information_reminder": CaseInformationReminder,
    "case.acknowledged": CaseAcknowledged,
    "case.priority_changed": CasePriorityChanged,
    "case.assigned": CaseAssigned,
    "case.decided": CaseDecided,
    "case.withdrawal_too_late": CaseWithdrawalTooLate,
    "licence.issued": LicenceIssued,
    "licence.revoked": LicenceRevoked,
    "licence.shipment_recorded": LicenceShipmentRecorded,
    "priority_list.issued": PriorityListIssued,
    "case.deadline_breached": CaseDeadlineBreached,
    "audit.checkpoint_issued": AuditCheckpointIssued,
}

EVENT_STREAMS: dict[str, str] = {
    t: (INTAKE_STREAM if t.startswith("application.") else REVIEW_STREAM) for t in EVENT_SCHEMAS
}


def new_event(source: str, event_type: str, subject: str, data: BaseModel) -> CloudEvent:
    """Build an event whose data has been checked against the type's schema."""
    schema = EVENT_SCHEMAS[event_type]
    if not isinstance(data, schema):
        raise TypeError(f"{event_type} needs {schema.__name__}, got {type(data).__name__}")
    return CloudEvent(
        source=source, type=event_type, subject=subject, data=data.model_dump(mode="json")
    )
