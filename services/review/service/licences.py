"""Licences: issuing one on approval, shipments drawn against it, revocation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col

from services.review.domain import licences as licence_rules
from services.review.domain.errors import CaseConflict
from services.review.service.core import CaseworkCore
from services.review.service.who import Who
from services.review.store import Case, LicenceRecord, ShipmentRecord, shipments_of
from shared.events import LicenceRevoked, LicenceShipmentRecorded, RemainingLine, ShippedLine
from shared.i18n import N_

__all__ = ["Licences"]


class Licences(CaseworkCore):
    def licence_domain(self, record: LicenceRecord) -> licence_rules.Licence:
        return licence_rules.Licence(
            number=record.number,
            type=record.type,
            valid_from=record.valid_from,
            valid_until=record.valid_until,
            quantity_basis=record.quantity_basis,  # type: ignore[arg-type]
            lines=tuple(
                licence_rules.LicenceLine(
                    line=int(line["line"]),
                    element=line["element"],
                    form=line.get("form"),
                    hs_code=line.get("hs_code"),
                    requested_kg=Decimal(str(line["requested_quantity_kg"])),
                    approved_kg=Decimal(str(line["approved_quantity_kg"])),
                )
                for line in record.lines
            ),
            revoked_on=record.revoked_on,
        )

    def shipments_domain(self, session: Session, number: str) -> list[licence_rules.Shipment]:
        return [
            licence_rules.Shipment(
                shipped_on=s.shipped_on,
                lines=tuple(
                    licence_rules.ShipmentLine(
                        key=int(line["key"]) if str(line["key"]).isdigit() else line["key"],
                        quantity_kg=Decimal(str(line["quantity_kg"])),
                    )
                    for line in s.lines
                ),
            )
            for s in shipments_of(session, number)
        ]

    def licence_view(self, session: Session, record: LicenceRecord) -> dict[str, Any]:
        licence = self.licence_domain(record)
        shipments = self.shipments_domain(session, record.number)
        remaining = licence_rules.remaining(licence, shipments)
        view = licence.as_dict()
        view["status"] = licence_rules.status(licence, shipments, self.today())
        view["remaining_kg"] = {str(k): str(v) for k, v in remaining.items()}
        view["shipments"] = [
            {
                "shipped_on": s.shipped_on.isoformat(),
                "lines": [
                    {"key": line.key, "quantity_kg": str(line.quantity_kg)} for line in s.lines
                ],
            }
            for s in shipments
        ]
        return view

    def _issue_licence(
        self, session: Session, case: Case, who: Who, given: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The licence an approval issues, stored; returns it as the audit records it."""
        licence = licence_rules.issue_licence(
            given, case.application["goods"], protocol=self.protocol
        )
        if session.get(LicenceRecord, licence.number) is not None:
            raise CaseConflict(
                N_("Licence number %(number)s is already in use."), number=licence.number
            )
        record = LicenceRecord(
            number=licence.number,
            case_id=case.id,
            type=licence.type,
            valid_from=licence.valid_from,
            valid_until=licence.valid_until,
            quantity_basis=licence.quantity_basis,
            lines=licence.as_dict()["lines"],
            issued_by=who.id,
            issued_at=self.now(),
        )
        session.add(record)
        return licence.as_dict()

    def record_shipment(
        self,
        session: Session,
        record: LicenceRecord,
        who: Who,
        lines: Sequence[Mapping[str, Any]],
        shipped_on: date,
    ) -> ShipmentRecord:
        self.require(who, "record_shipment", N_("Shipments are recorded by the Chinese side."))
        self._lock_licence(session, record)
        licence = self.licence_domain(record)
        earlier = self.shipments_domain(session, record.number)
        shipment = licence_rules.draw(
            licence,
            earlier,
            lines,
            shipped_on,
            recorded_on=self.today(),
        )
        stored = ShipmentRecord(
            licence_number=record.number,
            shipped_on=shipment.shipped_on,
            lines=[
                {"key": line.key, "quantity_kg": str(line.quantity_kg)} for line in shipment.lines
            ],
            recorded_by=who.id,
            recorded_at=self.now(),
        )
        session.add(stored)
        case = self._audit_on_case(
            session,
            record,
            who,
            "shipment_recorded",
            {"licence": record.number, "lines": stored.lines, "shipped_on": str(shipped_on)},
        )
        if case is not None:
            self._emit(
                session,
                "licence.shipment_recorded",
                case,
                self._shipment_event(case, licence, stored.id, shipment, [*earlier, shipment]),
            )
        return stored

    def _shipment_event(
        self,
        case: Case,
        licence: licence_rules.Licence,
        shipment_id: str,
        shipment: licence_rules.Shipment,
        shipments: Sequence[licence_rules.Shipment],
    ) -> LicenceShipmentRecorded:
        """The applicant's view of a shipment: its date and lines, what remains per key after
        it, the licence's status; who recorded it and when stay in the case file."""
        remaining = licence_rules.remaining(licence, shipments)
        return LicenceShipmentRecorded(
            **self._refs(case),
            number=licence.number,
            shipment_id=shipment_id,
            shipped_on=shipment.shipped_on,
            status=licence_rules.status(licence, shipments, self.today()),
            lines=[
                ShippedLine(**_key_fields(licence, line.key), quantity_kg=float(line.quantity_kg))
                for line in shipment.lines
            ],
            remaining=[
                RemainingLine(
                    **_key_fields(licence, key), remaining_kg=float(max(left, Decimal(0)))
                )
                for key, left in remaining.items()
            ],
        )

    def revoke_licence(
        self, session: Session, record: LicenceRecord, who: Who, reason: str
    ) -> LicenceRecord:
        self.require(who, "revoke_licence", N_("Licences are revoked by a CN supervisor."))
        self._lock_licence(session, record)
        if record.revoked_on is not None:
            raise CaseConflict(
                N_("Licence %(number)s was revoked on %(date)s."),
                number=record.number,
                date=record.revoked_on,
            )
        record.revoked_on = self.today()
        session.add(record)
        case = self._audit_on_case(
            session, record, who, "licence_revoked", {"licence": record.number, "reason": reason}
        )
        if case is not None:
            # The reason is China's own wording for the case file: the event does not carry it.
            self._emit(
                session,
                "licence.revoked",
                case,
                LicenceRevoked(
                    **self._refs(case), number=record.number, revoked_on=record.revoked_on
                ),
            )
        return record

    def _audit_on_case(
        self,
        session: Session,
        record: LicenceRecord,
        who: Who,
        action: str,
        payload: Mapping[str, Any],
    ) -> Case | None:
        case = session.get(Case, record.case_id)
        if case is None:
            return None
        self._lock_case(session, case)
        self._audit(session, case, who, action, case.state, case.state, payload)
        session.add(case)
        return case

    def _lock_licence(self, session: Session, record: LicenceRecord) -> None:
        """Lock the licence row and read it again: two shipments cannot both draw the last
        kilograms, and a shipment waiting on a revocation sees the licence revoked."""
        session.execute(
            update(LicenceRecord)
            .where(col(LicenceRecord.number) == record.number)
            .values(number=record.number)
            .execution_options(synchronize_session=False)
        )
        session.refresh(record)


def _key_fields(licence: licence_rules.Licence, key: int | str) -> dict[str, Any]:
    """A draw-down key as the applicant reads it: the line with its element and form, or
    (a general licence, drawn per element) the element alone."""
    if isinstance(key, str):
        return {"line": None, "element": key, "form": None}
    line = next(li for li in licence.lines if li.line == key)
    return {"line": line.line, "element": line.element, "form": line.form}
