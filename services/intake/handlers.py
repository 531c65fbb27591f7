"""Intake's subscribers: keep the applicant's view current from review's events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlmodel import Session, select

from services.intake import domain
from services.intake.store import Application, InformationRequest, add_timeline
from shared.consumer import Handler
from shared.db import RowsByKey
from shared.events import (
    CaseAcknowledged,
    CaseAssigned,
    CaseDecided,
    CaseInformationReminder,
    CaseInformationRequested,
    CaseOpened,
    CasePriorityChanged,
    CaseStateChanged,
    CaseWithdrawalTooLate,
    CloudEvent,
    LicenceIssued,
    LicenceRevoked,
    LicenceShipmentRecorded,
    data_values,
)

T = TypeVar("T", bound=BaseModel)


def _typed(model: type[T], apply: Callable[[Session, CloudEvent, T], None]) -> Handler:
    def handle(session: Session, event: CloudEvent) -> None:
        apply(session, event, model.model_validate(event.data))

    return handle


# A read's applications, loaded at once by `prepare` for the handlers, and locked: a
# withdrawal between this read and its commit would otherwise be written over by the
# projected status (the withdrawal's conditional UPDATE waits, then sees the new status).
APPLICATIONS = RowsByKey(Application, "id", "intake.applications", for_update=True)


def _application(session: Session, application_id: str) -> Application | None:
    # Events of applications this intake never registered (another deployment) are ignored.
    return APPLICATIONS.get(session, application_id)


def prepare(session: Session, events: list[CloudEvent]) -> None:
    """Before a read's handlers: all its applications in one query instead of one each."""
    APPLICATIONS.load(session, data_values(events, "application_id"))


def _set_status(app: Application, event: CloudEvent, status: str) -> bool:
    """Move the status unless a newer event already did (consumers may see events late)."""
    changed_at = app.status_changed_at
    if changed_at.tzinfo is None:
        changed_at = changed_at.replace(tzinfo=event.time.tzinfo)
    if event.time < changed_at:
        return False
    if domain.is_terminal(app.status) and app.status != status:
        # Withdrawn at intake wins over review's later view of a still-open case.
        return False
    app.status, app.status_changed_at = status, event.time
    if status in domain.RELEASING_STATUSES:
        app.mofcom_released = True
    return True


def _contact(value: BaseModel | None) -> dict[str, Any] | None:
    return value.model_dump(mode="json") if value is not None else None


def on_case_opened(session: Session, event: CloudEvent, data: CaseOpened) -> None:
    app = _application(session, data.application_id)
    if app is None:
        return
    app.case_id = data.case_id
    app.priority_tier = data.priority_tier
    app.expected_decision_date = data.expected_decision_date
    if data.point_of_contact is not None and data.point_of_contact.side == "EU":
        app.point_of_contact = _contact(data.point_of_contact)
    _set_status(app, event, data.state)
    app.updated_at = event.time
    session.add(app)
    add_timeline(
        session, app, event.id, event.time, "case.opened", {"priority_tier": app.priority_tier}
    )


def on_state_changed(session: Session, event: CloudEvent, data: CaseStateChanged) -> None:
    app = _application(session, data.application_id)
    if app is None:
        return
    if data.priority_tier:
        app.priority_tier = data.priority_tier
    app.expected_decision_date = data.expected_decision_date
    if data.point_of_contact is not None and data.point_of_contact.side == "EU":
        app.point_of_contact = _contact(data.point_of_contact)
    moved = _set_status(app, event, data.to_state)
    if data.to_state == "lapsed":
        for request in session.exec(
            select(InformationRequest).where(
                InformationRequest.application_id == app.id, InformationRequest.status == "open"
            )
        ).all():
            request.status = "lapsed"
            session.add(request)
    app.updated_at = event.time
    session.add(app)
    if moved:
        add_timeline(
            session,
            app,
            event.id,
            event.time,
            "application.status_changed",
            {"from": data.from_state, "to": data.to_state},
        )


def on_information_requested(
    session: Session, event: CloudEvent, data: CaseInformationRequested
) -> None:
    app = _application(session, data.application_id)
    if app is None or session.get(InformationRequest, data.request.id) is not None:
        return
    session.add(
        InformationRequest(
            id=data.request.id,
            application_id=app.id,
            question=data.request.question,
            due=data.request.due,
            status="open",
            requested_at=event.time,
        )
    )
    add_timeline(
        session,
        app,
        event.id,
        event.time,
        "application.information_requested",
        {"request_id": data.request.id, "due": data.request.due.isoformat()},
    )


def on_information_reminder(
    session: Session, event: CloudEvent, data: CaseInformationReminder
) -> None:
    app = _application(session, data.application_id)
    if app is None:
        return
    add_timeline(
        session,
        app,
        event.id,
        event.time,
        "application.information_reminder",
        {"request_id": data.request.id, "due": data.request.due.isoformat()},
    )


def on_acknowledged(session: Session, event: CloudEvent, data: CaseAcknowledged) -> None:
    """MOFCOM accepted the file: the statutory clock starts and the expected date moves."""
    app = _application(session, data.application_id)
    if app is None:
        return
    app.expected_decision_date = data.expected_decision_date
    app.updated_at = event.time
    session.add(app)
    add_timeline(
        session,
        app,
        event.id,
        event.time,
        "application.acknowledged",
        {
            "accepted_on": data.accepted_on.isoformat(),
            "statutory_due_date": _iso_or_none(data.statutory_due_date),
            "expected_decision_date": _iso_or_none(data.expected_decision_date),
        },
    )


def _iso_or_none(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def on_priority_changed(session: Session, event: CloudEvent, data: CasePriorityChanged) -> None:
    app = _application(session, data.application_id)
    if app is None:
        return
    app.priority_tier = data.priority_tier
    if data.expected_decision_date is not None:
        app.expected_decision_date = data.expected_decision_date
    app.updated_at = event.time
    session.add(app)


def on_assigned(session: Session, event: CloudEvent, data: CaseAssigned) -> None:
    app = _application(session, data.application_id)
    # Only the EU point of contact is shown to applicants (PROTOCOL.md, visibility).
    if app is None or data.side != "EU":
        return
    app.point_of_contact = _contact(data.point_of_contact)
    app.updated_at = event.time
    session.add(app)


def on_decided(session: Session, event: CloudEvent, data: CaseDecided) -> None:
    app = _application(session, data.application_id)
    if app is None:
        return
    app.decision = {
        "decision": data.decision,
        "reason": data.reason,
        # The reason's names as review's protocol had them when it decided (none before).
        "reason_label": data.reason_label,
        "at": event.time.isoformat(),
    }
    _set_status(app, event, data.decision)
    app.updated_at = event.time
    session.add(app)
    add_timeline(
        session,
        app,
        event.id,
        event.time,
        f"application.{data.decision}",
        {"reason": data.reason},
    )


def on_withdrawal_too_late(
    session: Session, event: CloudEvent, data: CaseWithdrawalTooLate
) -> None:
    """Review decided the case before the withdrawal reached it: the decision stands.

    Intake took the withdrawal (status `withdrawn`); review's state is the case's state, so
    the applicant's view returns to the decision, and its timeline says why (finding F10).
    """
    app = _application(session, data.application_id)
    if app is None:
        return
    app.status, app.status_changed_at = data.decision, event.time
    app.updated_at = event.time
    session.add(app)
    add_timeline(
        session,
        app,
        event.id,
        event.time,
        "application.withdrawal_too_late",
        {"decision": data.decision, "withdrawn_at": data.withdrawn_at.isoformat()},
    )


def on_licence_issued(session: Session, event: CloudEvent, data: LicenceIssued) -> None:
    app = _application(session, data.application_id)
    if app is None:
        return
    app.licence = data.licence.model_dump(mode="json")
    app.updated_at = event.time
    session.add(app)
    add_timeline(
        session, app, event.id, event.time, "licence.issued", {"number": data.licence.number}
    )


def on_licence_revoked(session: Session, event: CloudEvent, data: LicenceRevoked) -> None:
    app = _application(session, data.application_id)
    if app is None:
        return
    revoked = {"status": "revoked", "revoked_on": data.revoked_on.isoformat()}
    app.licence = {**(app.licence or {"number": data.number}), **revoked}
    app.updated_at = event.time
    session.add(app)
    add_timeline(session, app, event.id, event.time, "licence.revoked", {"number": data.number})


def on_shipment_recorded(
    session: Session, event: CloudEvent, data: LicenceShipmentRecorded
) -> None:
    """A shipment drawn against the application's licence (`domain.with_shipment`)."""
    app = _application(session, data.application_id)
    if app is None:
        return
    app.licence = domain.with_shipment(
        app.licence,
        data.number,
        {
            "id": data.shipment_id,
            "shipped_on": data.shipped_on.isoformat(),
            "lines": [line.model_dump(mode="json") for line in data.lines],
        },
        [line.model_dump(mode="json") for line in data.remaining],
        data.status,
        event.time,
    )
    app.updated_at = event.time
    session.add(app)
    add_timeline(
        session,
        app,
        event.id,
        event.time,
        "licence.shipment_recorded",
        {"number": data.number, "shipped_on": data.shipped_on.isoformat()},
    )


REVIEW_HANDLERS: dict[str, Handler] = {
    "case.opened": _typed(CaseOpened, on_case_opened),
    "case.state_changed": _typed(CaseStateChanged, on_state_changed),
    "case.information_requested": _typed(CaseInformationRequested, on_information_requested),
    "case.information_reminder": _typed(CaseInformationReminder, on_information_reminder),
    "case.acknowledged": _typed(CaseAcknowledged, on_acknowledged),
    "case.priority_changed": _typed(CasePriorityChanged, on_priority_changed),
    "case.assigned": _typed(CaseAssigned, on_assigned),
    "case.decided": _typed(CaseDecided, on_decided),
    "licence.issued": _typed(LicenceIssued, on_licence_issued),
    "licence.revoked": _typed(LicenceRevoked, on_licence_revoked),
    "licence.shipment_recorded": _typed(LicenceShipmentRecorded, on_shipment_recorded),
    "case.withdrawal_too_late": _typed(CaseWithdrawalTooLate, on_withdrawal_too_late),
}
