"""Licences: validity by type, approved quantities, status, and shipments drawing them down."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from services.review.domain.errors import (
    FieldError,
    InvalidLicence,
    InvalidShipment,
    LicenceNotActive,
    QuantityExceeded,
    QuantityExcess,
)
from services.review.domain.protocol import Protocol

__all__ = [
    "InvalidLicence",
    "InvalidShipment",
    "Licence",
    "LicenceLine",
    "LicenceNotActive",
    "LicenceStatus",
    "QuantityExceeded",
    "Shipment",
    "ShipmentLine",
    "draw",
    "issue_licence",
    "remaining",
    "revoke",
    "status",
    "validity_end",
]

LicenceStatus = Literal["active", "expired", "exhausted", "revoked"]
# A shipment may be dated one day after the service's (UTC) today: China's calendar day,
# the licence's, starts eight hours earlier.
SHIPMENT_DATE_TOLERANCE = timedelta(days=1)
_ZERO = Decimal(0)


@dataclass(frozen=True)
class LicenceLine:
    """One goods line of the application (numbered from 1) with what China approved for it."""

    line: int
    element: str
    form: str | None
    hs_code: str | None
    requested_kg: Decimal
    approved_kg: Decimal


@dataclass(frozen=True)
class Licence:
    """An issued licence. Quantities are Decimal so repeated draws never drift like floats."""

    number: str
    type: str
    valid_from: date
    valid_until: date
    quantity_basis: Literal["line", "element"]
    lines: tuple[LicenceLine, ...]
    revoked_on: date | None = None

    def ceilings(self) -> dict[int | str, Decimal]:
        """Approved kg per line number, or per element for a general licence."""
        totals: dict[int | str, Decimal] = {}
        for line in self.lines:
            key: int | str = line.element if self.quantity_basis == "element" else line.line
            totals[key] = totals.get(key, _ZERO) + line.approved_kg
        return totals

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "type": self.type,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "quantity_basis": self.quantity_basis,
            "revoked_on": self.revoked_on.isoformat() if self.revoked_on else None,
            "lines": [
                {
                    "line": line.line,
                    "element": line.element,
                    "form": line.form,
                    "hs_code": line.hs_code,
                    "requested_quantity_kg": str(line.requested_kg),
                    "approved_quantity_kg": str(line.approved_kg),
                }
                for line in self.lines
            ],
        }


@dataclass(frozen=True)
class ShipmentLine:
    """Quantity shipped against one key of the licence: a line number, or an element."""

    key: int | str
    quantity_kg: Decimal


@dataclass(frozen=True)
class Shipment:
    shipped_on: date
    lines: tuple[ShipmentLine, ...]


def validity_end(months: int, valid_from: date) -> date:
    """The last valid day of a licence running `months` months from `valid_from` inclusive.

    It is the day before the same day `months` later (15 Jan + 3 months: until 14 Apr). When
    that day does not exist (31 Jan + 1 month), the licence runs to the end of the shorter month.
    """
    month_index = valid_from.month - 1 + months
    year, month = valid_from.year + month_index // 12, month_index % 12 + 1
    try:
        anniversary = date(year, month, valid_from.day)
    except ValueError:
        anniversary = date(year + month // 12, month % 12 + 1, 1)
    return anniversary - timedelta(days=1)


def issue_licence(
    licence: Mapping[str, Any],
    goods: Sequence[Mapping[str, Any]],
    *,
    protocol: Protocol | None = None,
) -> Licence:
    """Build the licence from `approve`'s validated `licence` parameter and the application's goods.

    Lines not listed are approved as asked; a listed line may be approved for less (0: none of
    it), never for more. `valid_until` defaults to the type's validity and may be shorter,
    never longer. Raises InvalidLicence naming every broken rule.
    """
    protocol = protocol or Protocol.load()
    errors: list[FieldError] = []
    type_spec = protocol.licence_types.get(licence.get("type", ""))
    if type_spec is None:
        raise InvalidLicence([FieldError("licence.type", "unknown licence type")])
    valid_from: date = licence["valid_from"]
    latest = validity_end(type_spec.max_validity_months, valid_from)
    valid_until: date = licence.get("valid_until") or validity_end(
        type_spec.validity_months, valid_from
    )
    if valid_until < valid_from:
        errors.append(FieldError("licence.valid_until", "must not be before valid_from"))
    elif valid_until > latest:
        errors.append(
            FieldError(
                "licence.valid_until",
                f"a {licence['type']} licence is valid for at most "
                f"{type_spec.max_validity_months} months: until {latest.isoformat()} at the latest",
            )
        )

    requested = [_requested_line(number, g) for number, g in enumerate(goods, start=1)]
    approved = {line.line: line.requested_kg for line in requested}
    seen: set[int] = set()
    for index, entry in enumerate(licence.get("lines") or []):
        path = f"licence.lines[{index}]"
        number = entry["line"]
        if number not in approved:
            errors.append(FieldError(f"{path}.line", f"the application has no line {number}"))
            continue
        if number in seen:
            errors.append(FieldError(f"{path}.line", f"line {number} is listed twice"))
            continue
        seen.add(number)
        quantity = _decimal(entry["approved_quantity_kg"])
        if quantity > approved[number]:
            errors.append(
                FieldError(
                    f"{path}.approved_quantity_kg",
                    f"must not exceed the {approved[number]} kg asked for line {number}",
                )
            )
            continue
        approved[number] = quantity
    if not requested:
        errors.append(FieldError("licence.lines", "the application has no goods lines"))
    elif not errors and all(q == _ZERO for q in approved.values()):
        errors.append(FieldError("licence.lines", "approves no quantity at all; refuse instead"))
    if errors:
        raise InvalidLicence(errors)
    return Licence(
        number=licence["number"],
        type=licence["type"],
        valid_from=valid_from,
        valid_until=valid_until,
        quantity_basis=type_spec.quantity_basis,
        lines=tuple(dataclasses.replace(r, approved_kg=approved[r.line]) for r in requested),
    )


def revoke(licence: Licence, on: date) -> Licence:
    return dataclasses.replace(licence, revoked_on=on)


def remaining(licence: Licence, shipments: Iterable[Shipment]) -> dict[int | str, Decimal]:
    """What is left to ship per line (or per element), after the recorded shipments."""
    left = licence.ceilings()
    for shipment in shipments:
        for line in shipment.lines:
            left[line.key] = left.get(line.key, _ZERO) - line.quantity_kg
    return left


def status(licence: Licence, shipments: Iterable[Shipment], today: date) -> LicenceStatus:
    """Revoked beats expired beats exhausted: the most final reason is the one shown."""
    if licence.revoked_on is not None and licence.revoked_on <= today:
        return "revoked"
    if today > licence.valid_until:
        return "expired"
    if all(q <= _ZERO for q in remaining(licence, shipments).values()):
        return "exhausted"
    return "active"


def draw(
    licence: Licence,
    shipments: Sequence[Shipment],
    lines: Sequence[Mapping[str, Any]],
    shipped_on: date,
    *,
    recorded_on: date | None = None,
) -> Shipment:
    """Record a shipment of `lines` ({line | element, quantity_kg}) against the licence.

    `recorded_on` is the day it is recorded (the service's today; by default the shipment's
    own day). Returns the shipment to store. Raises LicenceNotActive, InvalidShipment, or
    QuantityExceeded when any line (or element) would go beyond what remains; then nothing
    is drawn at all, so a shipment is accepted whole or not at all.

    A revoked licence takes no shipment recorded on or after its revocation, whatever date
    the shipment gives itself: a back-dated entry is exactly what a revocation must stop,
    and goods that really left before it are for the revoking authority to record.
    """
    recorded = recorded_on or shipped_on
    if licence.revoked_on is not None and licence.revoked_on <= recorded:
        raise LicenceNotActive(
            licence.number,
            "revoked",
            f"revoked on {licence.revoked_on.isoformat()}; no shipment is recorded after that",
        )
    latest = recorded + SHIPMENT_DATE_TOLERANCE
    if shipped_on > latest:
        raise InvalidShipment(
            [
                FieldError(
                    "shipped_on",
                    f"must not be after {latest.isoformat()}: a shipment is recorded once it left",
                )
            ]
        )
    current = status(licence, shipments, shipped_on)
    if current != "active":
        raise LicenceNotActive(licence.number, current, f"no shipment on {shipped_on.isoformat()}")
    if shipped_on < licence.valid_from:
        raise LicenceNotActive(
            licence.number, "active", f"valid only from {licence.valid_from.isoformat()}"
        )
    parsed = _shipment_lines(licence, lines)
    left = remaining(licence, shipments)
    asked: dict[int | str, Decimal] = {}
    for line in parsed:
        asked[line.key] = asked.get(line.key, _ZERO) + line.quantity_kg
    excesses = [
        QuantityExcess(
            _key_name(key),
            str(quantity),
            str(max(left[key], _ZERO)),
            line=key if isinstance(key, int) else None,
        )
        for key, quantity in asked.items()
        if quantity > left[key]
    ]
    if excesses:
        raise QuantityExceeded(licence.number, excesses)
    return Shipment(shipped_on, parsed)


def _shipment_lines(
    licence: Licence, lines: Sequence[Mapping[str, Any]]
) -> tuple[ShipmentLine, ...]:
    by_number = {line.line: line for line in licence.lines}
    keys = licence.ceilings()
    errors: list[FieldError] = []
    parsed: list[ShipmentLine] = []
    if not lines:
        errors.append(FieldError("lines", "a shipment needs at least one line"))
    for index, raw in enumerate(lines):
        path = f"lines[{index}]"
        quantity = _positive_decimal(raw.get("quantity_kg"))
        if quantity is None:
            errors.append(FieldError(f"{path}.quantity_kg", "must be a number greater than 0"))
        key: int | str | None
        if licence.quantity_basis == "element":
            # A general licence's ceiling is per element; a line number names its element.
            element = raw.get("element")
            if element is None and raw.get("line") in by_number:
                element = by_number[raw["line"]].element
            key = element if element in keys else None
            if key is None:
                errors.append(FieldError(f"{path}.element", "names no element of this licence"))
        else:
            number = raw.get("line")
            key = number if isinstance(number, int) and number in keys else None
            if key is None:
                errors.append(FieldError(f"{path}.line", "names no line of this licence"))
        if key is not None and quantity is not None:
            parsed.append(ShipmentLine(key, quantity))
    if errors:
        raise InvalidShipment(errors)
    return tuple(parsed)


def _requested_line(number: int, goods: Mapping[str, Any]) -> LicenceLine:
    quantity = _decimal(goods.get("quantity_kg", 0))
    return LicenceLine(
        line=number,
        element=str(goods.get("element", "")),
        form=goods.get("form"),
        hs_code=goods.get("hs_code"),
        requested_kg=quantity,
        approved_kg=quantity,
    )


def _decimal(value: Any) -> Decimal:
    # Through str, so 120.1 stays 120.1 instead of its binary approximation.
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _positive_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return None
    try:
        quantity = _decimal(value)
    except InvalidOperation:
        return None
    return quantity if quantity.is_finite() and quantity > _ZERO else None


def _key_name(key: int | str) -> str:
    return f"line {key}" if isinstance(key, int) else key
