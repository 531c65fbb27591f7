"""The portal's words for what intake names by code: statuses, document kinds, staff roles,
webhook deliveries' statuses.

English, marked for the catalogue (`N_`) and translated where a page shows them (the
filters `status_label`, `document_kind`, `role_label`, `delivery_label` of every portal
template).
"""

from __future__ import annotations

from collections.abc import Callable

from shared.i18n import N_

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


def _named(names: dict[str, str], gettext: Callable[[str], str]) -> Callable[[object], str]:
    def name(code: object) -> str:
        known = names.get(str(code))
        return gettext(known) if known else str(code).replace("_", " ").capitalize()

    return name


def filters(gettext: Callable[[str], str]) -> dict[str, Callable[[object], str]]:
    return {
        "status_label": _named(STATUS_LABELS, gettext),
        "document_kind": _named(DOCUMENT_KINDS, gettext),
        "role_label": _named(ROLES, gettext),
        "delivery_label": _named(DELIVERY_WORDS, gettext),
    }
