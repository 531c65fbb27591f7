"""What each side may see of a case: explicit allow-lists per side, so new fields stay hidden.

A full case, as the review service assembles it, is a dict with these keys (all optional):

    id, reference, version, state, submitted_at, created_at, updated_at
    applicant:        {company_id, name, eori}
    application:      {mofcom_application_number, licence_type,
                       exporter: {name, uscc}, consignee: {name, country},
                       end_user: {name, country}, end_use: {category, description},
                       goods: [{element, form, hs_code, quantity_kg, value_eur}],
                       urgency: {stock_days, production_stop_date, jobs_at_risk,
                                 contract_value_eur},
                       contract_value_eur, sme}
    priority:         {tier, score, fired: [{rule_id, description, points, explanation}],
                       rules_version, flags, overridden, list_number, list_position}
    deadlines:        {stage_due, statutory_due, answer_due, ...: dates}
    expected_decision_date, production_stops_before_decision
    points_of_contact: {EU: {id, name, email}, CN: {id, name, email}}
    information_requests: [{id, question, status, due, asked_by_side, asked_at,
                            answer, answered_at, document_ids}]
    documents:        [{id, kind, filename, content_type, size, sha256, shareable, uploaded_at,
                        href}]
    notes:            [{id, visibility: joint|eu|cn, author: {id, name, side}, text, at}]
    licence:          {number, type, status, valid_from, valid_until, quantity_basis,
                       lines: [{line, element, form, hs_code, requested_quantity_kg,
                                approved_quantity_kg}]}
    proposals:        [{id, action, side, params, status, proposed_at,
                        proposed_by: {id, name, role}}]   (pending, awaiting countersignature)
    joint_meetings:   [{action, at, held_on, outcome, participants: [{id, name, side}]}]
    history:          [{id, seq, actor: {id, side, role}, action, at, from_state, to_state,
                        payload}]

The history carries no hashes here: each side's chain fields (its own seq, salt, commitments,
prev_hash, hash) are computed over that side's view of each entry (`history_entry_view`) by
services/review/audit_service.py, so no hash over a hidden field ever reaches a side.

History payloads are the validated action parameters (Transition.payload()); `open` carries
{"priority": <PriorityResult.as_dict()>}, a note carries {"note_id", "visibility", "text"}, an
entry about a proposal {"proposal_id", "action", "visibility", ...}, a download
{"document_id", "filename", "sha256", "shareable"}. Notes and proposal entries are shown by
their visibility (a side's own, or joint); a side sees the download of a document only if it
may open the document itself (`may_open_document`). Anything not named in a side's
allow-list below is dropped, at every depth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, TypeAlias

__all__ = [
    "DOWNLOAD_ACTION",
    "NOTE_ACTION",
    "PROPOSAL_ACTIONS",
    "Viewer",
    "history_entry_view",
    "may_open_document",
    "view_for",
]

Viewer = Literal["EU", "CN", "applicant"]
NOTE_ACTION = "note_added"
DOWNLOAD_ACTION = "document_downloaded"
# Audit entries about a proposal awaiting countersignature: the proposing side's alone.
PROPOSAL_ACTIONS = (
    "proposed",
    "proposal_rejected",
    "proposal_withdrawn",
    "proposal_superseded",
)


class _Leaf:
    """Keep a scalar (or a list of scalars); a dict or list of dicts under it is dropped."""


KEEP = _Leaf()


@dataclass(frozen=True)
class Each:
    """A list whose items follow `item`; `only` filters which items are shown at all."""

    item: Spec
    only: Callable[[Mapping[str, Any]], bool] | None = None


@dataclass(frozen=True)
class Chosen:
    """A spec that depends on the value itself (a history entry's payload on its action)."""

    choose: Callable[[Mapping[str, Any]], Spec]


Spec: TypeAlias = "_Leaf | Mapping[str, Spec] | Each | Chosen"

_DROP = object()
_SCALARS = (str, int, float, bool, date, datetime, Decimal, type(None))


def _apply(spec: Spec, value: Any) -> Any:
    if isinstance(spec, _Leaf):
        if isinstance(value, _SCALARS):
            return value
        if isinstance(value, list) and all(isinstance(v, _SCALARS) for v in value):
            return list(value)
        return _DROP
    if isinstance(spec, Chosen):
        return _apply(spec.choose(value), value) if isinstance(value, Mapping) else _DROP
    if isinstance(spec, Each):
        if not isinstance(value, list):
            return _DROP
        items = (
            _apply(spec.item, v)
            for v in value
            if spec.only is None or (isinstance(v, Mapping) and spec.only(v))
        )
        return [v for v in items if v is not _DROP]
    if not isinstance(value, Mapping):
        return _DROP
    shown = {key: _apply(sub, value[key]) for key, sub in spec.items() if key in value}
    return {key: v for key, v in shown.items() if v is not _DROP}


def _keep(*keys: str) -> dict[str, Spec]:
    return dict.fromkeys(keys, KEEP)


# --- building blocks ----------------------------------------------------------------------

_CASE_IDS = _keep("id", "reference", "version", "state", "submitted_at", "created_at", "updated_at")
_PARTY = _keep("name", "country")
_CORE: dict[str, Spec] = _keep("mofcom_application_number", "licence_type") | {
    "exporter": _keep("name", "uscc"),
    "end_use": _keep("category"),
    "goods": Each(_keep("element", "form", "hs_code", "quantity_kg")),
}
_FULL_APPLICATION: dict[str, Spec] = (
    _CORE
    | {
        "consignee": _PARTY,
        "end_user": _PARTY,
        "end_use": _keep("category", "description"),
        "goods": Each(_keep("element", "form", "hs_code", "quantity_kg", "value_eur")),
        "urgency": _keep(
            "stock_days", "production_stop_date", "jobs_at_risk", "contract_value_eur"
        ),
    }
    | _keep("contract_value_eur", "sme")
)
_FIRED = Each(_keep("rule_id", "description", "points", "explanation"))
_PRIORITY_EU: dict[str, Spec] = _keep(
    "tier", "score", "rules_version", "flags", "overridden", "list_number", "list_position"
) | {"fired": _FIRED}
_PRIORITY_CN = _keep("tier", "list_number", "list_position")
_OFFICIAL = _keep("id", "name", "email")
_LICENCE: dict[str, Spec] = _keep(
    "number", "type", "status", "valid_from", "valid_until", "quantity_basis"
) | {
    "lines": Each(
        _keep("line", "element", "form", "hs_code", "requested_quantity_kg", "approved_quantity_kg")
    )
}
_REQUEST = _keep(
    "id",
    "question",
    "status",
    "due",
    "asked_by_side",
    "asked_at",
    "answer",
    "answered_at",
    "document_ids",
)
_DOCUMENT = _keep("id", "kind", "filename", "content_type", "size", "sha256", "uploaded_at")
# An official's view links each document it lists to the route that hands it out.
_OPENABLE = _DOCUMENT | _keep("href")
_NOTE: dict[str, Spec] = _keep("id", "visibility", "text", "at") | {
    "author": _keep("id", "name", "side")
}


def _notes_of(*visibilities: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda note: note.get("visibility") in visibilities


_MEETING_RECORD: dict[str, Spec] = _keep("action", "at", "held_on", "outcome") | {
    "participants": Each(_keep("id", "name", "side"))
}


def _proposals_of(side: str, payloads: Mapping[str, Spec]) -> Each:
    """A side's own pending proposals, their parameters as that side sees the action's."""
    return Each(
        Chosen(
            lambda p: (
                _keep("id", "action", "side", "status", "proposed_at")
                | {
                    "proposed_by": _keep("id", "name", "role"),
                    "params": payloads.get(str(p.get("action")), {}),
                }
            )
        ),
        only=lambda p: p.get("side") == side,
    )


def _shared_with_cn(document: Mapping[str, Any]) -> bool:
    """A document (or a download's payload, which names the same flag) China may see."""
    return document.get("shareable") is True


# --- history payloads, per action and side -------------------------------------------------

_REASONED = _keep("reason", "detail")
_MEETING = _keep("held_on", "participants", "outcome")
# A decision that took effect on a countersignature names the proposal and its proposer.
_COUNTERSIGNED = _keep("proposal_id", "proposed_by")
_PROPOSAL_REF = _keep("proposal_id", "action", "visibility")


def _proposal_entry(payloads: Mapping[str, Spec]) -> Spec:
    """A proposal's audit payload: its reference, and its parameters as the action's own
    history entry would show them to the same side."""
    return Chosen(
        lambda payload: (
            _PROPOSAL_REF
            | _keep("reason", "by_action")
            | {"params": payloads.get(str(payload.get("action")), {})}
        )
    )


_PAYLOADS_EU: dict[str, Spec] = {
    "open": {"priority": _PRIORITY_EU},
    "request_information": _keep("request_id", "question", "due_in_working_days", "due"),
    "answer": _keep("request_id", "answer", "document_ids"),
    "admit": {},
    "decline": _REASONED | _COUNTERSIGNED,
    "set_priority": _keep("tier", "reason"),
    "rescore": _keep("tier", "reason", "from_tier", "score", "from_score", "rules_version"),
    "issue_priority_list": _keep("list_number", "position"),
    "fast_track": _keep("reason"),
    "acknowledge": _keep("accepted_on"),
    "correct_acceptance_date": _keep("accepted_on", "previous_accepted_on", "reason"),
    "escalate": _keep("reason"),
    # `outcome` alone: entries written before the joint meeting was recorded in full.
    "return_to_review": _keep("outcome") | {"meeting": _MEETING},
    "approve": {"licence": _LICENCE, "meeting": _MEETING},
    "refuse": _REASONED | _COUNTERSIGNED | {"meeting": _MEETING},
    "withdraw": _keep("reason"),
    "lapse": {},
    "assigned": _keep("side", "official_id"),
    "deadline_breached": _keep("state", "limit", "due"),
    "reminder_sent": _keep("request_id", "due"),
    "licence_revoked": _keep("licence", "reason"),
    "shipment_recorded": _keep("licence", "shipped_on")
    | {"lines": Each(_keep("key", "quantity_kg"))},
    NOTE_ACTION: _keep("note_id", "visibility", "text"),
    DOWNLOAD_ACTION: _keep("document_id", "filename", "sha256", "shareable"),
}
_PAYLOADS_EU |= dict.fromkeys(PROPOSAL_ACTIONS, _proposal_entry(_PAYLOADS_EU))
# The EU side's own reasons for ranking (set_priority, fast_track) cite the applicant's
# commercial urgency, so China sees the tier and the fact of a fast track, not the reason.
_PAYLOADS_CN: dict[str, Spec] = _PAYLOADS_EU | {
    "open": {"priority": _keep("tier")},
    "set_priority": _keep("tier"),
    # The reason names the urgency rules that fired: commercial, the EU side's.
    "rescore": _keep("tier"),
    "fast_track": {},
    "request_information": _keep("request_id", "due_in_working_days", "due"),
    "answer": _keep("request_id"),
    DOWNLOAD_ACTION: _keep("document_id", "filename", "sha256"),
}
_PAYLOADS_CN |= dict.fromkeys(PROPOSAL_ACTIONS, _proposal_entry(_PAYLOADS_CN))
_PAYLOADS_APPLICANT: dict[str, Spec] = {
    "open": {"priority": _keep("tier")},
    "request_information": _keep("request_id", "question", "due_in_working_days", "due"),
    "answer": _keep("request_id", "answer", "document_ids"),
    "admit": {},
    "decline": _REASONED,
    "issue_priority_list": {},
    "fast_track": {},
    "rescore": _keep("tier"),
    "acknowledge": _keep("accepted_on"),
    "correct_acceptance_date": _keep("accepted_on"),
    "approve": {"licence": _LICENCE},
    "refuse": _REASONED,
    "withdraw": _keep("reason"),
    "lapse": {},
    "reminder_sent": _keep("request_id", "due"),
}


def _history(
    payloads: Mapping[str, Spec],
    hidden_notes: str | None,
    with_officials: bool,
    documents: Callable[[Mapping[str, Any]], bool] | None = None,
) -> Each:
    entry_keys = ("id", "seq", "action", "at", "from_state", "to_state")
    actor: Spec = _keep("id", "side", "role") if with_officials else _keep("side")

    def shown(entry: Mapping[str, Any]) -> bool:
        action = entry.get("action")
        if action not in payloads:
            # Unknown actions are still shown to officials (without payload), never to applicants.
            return with_officials
        payload = entry.get("payload")
        if action == NOTE_ACTION or action in PROPOSAL_ACTIONS:
            return isinstance(payload, Mapping) and payload.get("visibility") != hidden_notes
        if action == DOWNLOAD_ACTION and documents is not None:
            # Who opened a document the side may not see is as hidden as the document.
            return isinstance(payload, Mapping) and documents(payload)
        return True

    def spec(entry: Mapping[str, Any]) -> Spec:
        payload = payloads.get(str(entry.get("action")), {})
        return _keep(*entry_keys) | {"actor": actor, "payload": payload}

    return Each(Chosen(spec), only=shown)


# --- the three views ------------------------------------------------------------------------

_EU_VIEW: dict[str, Spec] = _CASE_IDS | {
    "applicant": _keep("company_id", "name", "eori"),
    "application": _FULL_APPLICATION,
    "priority": _PRIORITY_EU,
    "deadlines": _keep("stage_due", "statutory_due", "answer_due", "reminder_due", "lapse_due"),
    "expected_decision_date": KEEP,
    # Derived from the applicant's production stop date, which China does not see.
    "production_stops_before_decision": KEEP,
    "points_of_contact": {"EU": _OFFICIAL, "CN": _OFFICIAL},
    "information_requests": Each(_REQUEST),
    "documents": Each(_OPENABLE | _keep("shareable")),
    "notes": Each(_NOTE, only=_notes_of("joint", "eu")),
    "licence": _LICENCE,
    "proposals": _proposals_of("EU", _PAYLOADS_EU),
    "joint_meetings": Each(_MEETING_RECORD),
    "history": _history(_PAYLOADS_EU, hidden_notes="cn", with_officials=True),
}

_CN_VIEW: dict[str, Spec] = _CASE_IDS | {
    "application": _CORE,
    "priority": _PRIORITY_CN,
    "deadlines": _keep("stage_due", "statutory_due", "answer_due"),
    "expected_decision_date": KEEP,
    "points_of_contact": {"EU": _OFFICIAL, "CN": _OFFICIAL},
    # Questions the EU side asked (and their answers) may carry commercial data.
    "information_requests": Each(_REQUEST, only=lambda r: r.get("asked_by_side") == "CN"),
    "documents": Each(_OPENABLE, only=_shared_with_cn),
    "notes": Each(_NOTE, only=_notes_of("joint", "cn")),
    "licence": _LICENCE,
    "proposals": _proposals_of("CN", _PAYLOADS_CN),
    "joint_meetings": Each(_MEETING_RECORD),
    "history": _history(
        _PAYLOADS_CN, hidden_notes="eu", with_officials=True, documents=_shared_with_cn
    ),
}

_APPLICANT_VIEW: dict[str, Spec] = _CASE_IDS | {
    "application": _FULL_APPLICATION,
    "priority": _keep("tier"),
    "expected_decision_date": KEEP,
    "points_of_contact": {"EU": _keep("name", "email")},
    "information_requests": Each(
        _keep(
            "id", "question", "status", "due", "asked_at", "answer", "answered_at", "document_ids"
        )
    ),
    "documents": Each(_DOCUMENT | _keep("shareable")),
    "licence": _LICENCE,
    "history": _history(_PAYLOADS_APPLICANT, hidden_notes=None, with_officials=False),
}

_VIEWS: Mapping[str, dict[str, Spec]] = {
    "EU": _EU_VIEW,
    "CN": _CN_VIEW,
    "applicant": _APPLICANT_VIEW,
}


def view_for(side: Viewer, case: Mapping[str, Any]) -> dict[str, Any]:
    """The part of `case` that `side` may see: a new dict, the input is left untouched.

    The applicant's view assumes the caller already checked the case is the applicant's own.
    """
    try:
        spec = _VIEWS[side]
    except KeyError:
        raise ValueError(f"unknown viewer {side!r}") from None
    shown = _apply(spec, case)
    return shown if isinstance(shown, dict) else {}


def may_open_document(side: Viewer, document: Mapping[str, Any]) -> bool:
    """Whether `side` may open a document of a case it sees: exactly when its view of the
    case lists the document (one rule for the list, the link and the bytes)."""
    return bool(view_for(side, {"documents": [document]}).get("documents"))


def history_entry_view(side: Viewer, entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """One history entry as `side` sees it, or None when the entry is hidden from that side.

    The audit chains commit to exactly this, so what a side verifies is what it is shown.
    """
    shown = _apply(_VIEWS[side]["history"], [entry])
    return shown[0] if isinstance(shown, list) and shown else None
