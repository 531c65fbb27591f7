"""The portal's words for what intake names by code: statuses, document kinds, staff roles,
the timeline's events, the application's fields and webhook deliveries' statuses.

English, marked for the catalogue (`N_`) and translated where a page shows them (the
filters `status_label`, `document_kind`, `role_label`, `event_label`, `humanize_request`,
`field_label` and `delivery_label` of every portal template). The application's own codes
(licence type, element, form, end-use category) are named as its form offers them
(`field_value`, `element_name`, `form_name`). A decision's reason and a licence's type as
review decided them are review's codes: their names come with review's events (`named`).
"""

from __future__ import annotations

from collections.abc import Callable

from services.intake.application_form import (
    ELEMENT_NAMES,
    END_USE_CATEGORIES,
    FORM_NAMES,
    LICENCE_TYPES,
)
from shared.i18n import N_, named

STATUS_LABELS = {
    "submitted": N_("Submitted"),
    "eu_screening": N_("EU screening"),
    "awaiting_applicant": N_("Awaiting your answer"),
    "queued": N_("Queued for the Chinese side"),
    "cn_review": N_("Chinese review"),
    "joint_review": N_("Joint review"),
    "approved": N_("Approved"),
    "refused": N_("Refused"),
    "not_admitted": N_("Not admitted"),
    "withdrawn": N_("Withdrawn"),
    "lapsed": N_("Lapsed"),
}

DOCUMENT_KINDS = {
    "end_user_statement": N_("End-user statement"),
    "contract": N_("Contract"),
    "technical_specification": N_("Technical specification"),
    "mofcom_acceptance": N_("MOFCOM acceptance notice"),
    "invoice": N_("Invoice"),
    "answer_attachment": N_("Attachment to an answer"),
    "other": N_("Other document"),
}

# A webhook delivery's status and an attempt's outcome (notify's codes, docs/notify.md).
DELIVERY_WORDS = {
    "pending": N_("Pending"),
    "succeeded": N_("Succeeded"),
    "failed": N_("Failed"),
    "cancelled": N_("Cancelled"),
    "retrying": N_("Retrying"),
    "endpoint_disabled": N_("Endpoint disabled"),
}

ROLES = {"admin": N_("admin"), "member": N_("member")}

# The timeline's entries by their event type (an unknown one is named from its code).
EVENT_LABELS = {
    "application.submitted": N_("Submitted"),
    "application.received": N_("Received"),
    "application.status_changed": N_("Status changed"),
    "application.acknowledged": N_("Acknowledged by the Chinese side"),
    "application.information_requested": N_("Information requested"),
    "application.information_reminder": N_("Reminder: information is due"),
    "application.information_answered": N_("Information sent"),
    "application.document_added": N_("Document uploaded"),
    "application.document_deleted": N_("Document deleted"),
    "application.withdrawn": N_("Withdrawn"),
    "application.withdrawal_too_late": N_("Withdrawal came too late"),
    "application.approved": N_("Approved"),
    "application.refused": N_("Refused"),
    "application.not_admitted": N_("Not admitted"),
    "case.opened": N_("Case opened"),
    "licence.issued": N_("Licence issued"),
    "licence.revoked": N_("Licence revoked"),
    "licence.shipment_recorded": N_("Shipment recorded"),
}

# An information request's status, as its card says it.
REQUEST_STATUSES = {
    "open": N_("Open: your answer is awaited."),
    "answered": N_("Answered."),
    "lapsed": N_("Lapsed: the answer did not come in time."),
}

# The fields of an application as submitted (shared/applications.py's names).
FIELD_LABELS = {
    "mofcom_application_number": N_("MOFCOM application number"),
    "licence_type": N_("Licence type"),
    "exporter": N_("Exporter"),
    "consignee": N_("Consignee"),
    "end_user": N_("End user"),
    "end_use": N_("End use"),
    "goods": N_("Goods"),
    "urgency": N_("Urgency"),
    "sme": N_("Small or medium enterprise"),
    "name": N_("Name"),
    "country": N_("Country"),
    "address": N_("Address"),
    "element": N_("Element"),
    "form": N_("Form"),
    "hs_code": N_("HS code"),
    "quantity_kg": N_("Quantity (kg)"),
    "value_eur": N_("Value (EUR)"),
    "description": N_("Description"),
    "category": N_("Category"),
}


def _named(names: dict[str, str], gettext: Callable[[str], str]) -> Callable[[object], str]:
    def name(code: object) -> str:
        known = names.get(str(code))
        return gettext(known) if known else str(code).replace("_", " ").capitalize()

    return name


# The application's coded values by their field (shared/applications.py), named as the
# application form offers them; an element is its symbol and its name ("Dy — dysprosium").
FIELD_VALUES: dict[str, dict[str, str]] = {
    "licence_type": {str(k): v for k, v in LICENCE_TYPES.items()},
    "form": {str(k): v for k, v in FORM_NAMES.items()},
    "category": {str(k): v for k, v in END_USE_CATEGORIES.items()},
}
ELEMENTS = {str(k): v for k, v in ELEMENT_NAMES.items()}


def _field_value(gettext: Callable[[str], str]) -> Callable[[object, object], str]:
    """A value of the application as submitted, named when its field holds a code."""

    element = _element(gettext)

    def value(raw: object, field: object = None) -> str:
        if field == "element":
            return element(raw)
        known = FIELD_VALUES.get(str(field), {}).get(str(raw))
        return gettext(known) if known else str(raw)

    return value


def _element(gettext: Callable[[str], str]) -> Callable[[object], str]:
    def element(symbol: object) -> str:
        known = ELEMENTS.get(str(symbol))
        return f"{symbol} — {gettext(known)}" if known else str(symbol)

    return element


def filters(tag: str, gettext: Callable[[str], str]) -> dict[str, Callable[..., str]]:
    return {
        "named": named(tag),
        "status_label": _named(STATUS_LABELS, gettext),
        "document_kind": _named(DOCUMENT_KINDS, gettext),
        "role_label": _named(ROLES, gettext),
        "event_label": _named(EVENT_LABELS, gettext),
        "humanize_request": _named(REQUEST_STATUSES, gettext),
        "field_label": _named(FIELD_LABELS, gettext),
        "delivery_label": _named(DELIVERY_WORDS, gettext),
        "field_value": _field_value(gettext),
        "element_name": _element(gettext),
        "form_name": _named(FIELD_VALUES["form"], gettext),
    }
