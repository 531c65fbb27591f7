"""A case as one side sees it: the whole case assembled, then cut by visibility.view_for."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from services.review.api.common import side_of
from services.review.audit_service import history_for
from services.review.domain.priority import stops_before_decision
from services.review.domain.visibility import view_for
from services.review.service import Casework, Who
from services.review.service.documents import document_entry
from services.review.store import (
    AuditRecord,
    Case,
    audit_of,
    documents_of,
    licence_of,
    notes_of,
    pending_proposal,
    requests_of,
)
from shared.directory import Principal


def _official_ref(casework: Casework, official_id: str | None) -> dict[str, Any] | None:
    if official_id is None:
        return None
    official = casework.directory.official(official_id)
    return {"id": official_id, "name": official.name if official else ""}


def full_case(
    session: Session, casework: Casework, case: Case, history: list[AuditRecord] | None = None
) -> dict[str, Any]:
    """The whole case as visibility.view_for expects it; never sent as it is."""
    requests = requests_of(session, case.id)
    open_requests = [r for r in requests if r.status == "open"]
    deadlines: dict[str, Any] = {"stage_due": case.due_on}
    statutory_due = casework.statutory_due(case)
    if statutory_due is not None:
        deadlines["statutory_due"] = statutory_due
    if open_requests:
        deadlines.update(
            answer_due=open_requests[0].due,
            reminder_due=open_requests[0].reminder_on,
            lapse_due=open_requests[0].lapse_on,
        )
    licence = licence_of(session, case.id)
    records = history if history is not None else audit_of(session, case.id)
    proposal = pending_proposal(session, case)
    return {
        "id": case.id,
        "reference": case.reference,
        "version": case.version,
        "state": case.state,
        "submitted_at": case.submitted_at,
        "created_at": case.opened_at,
        "updated_at": case.updated_at,
        "applicant": {
            "company_id": case.company_id,
            "name": case.company_name,
            "eori": case.company_eori,
        },
        "application": case.application,
        "priority": {
            "tier": case.tier,
            "score": case.score,
            "fired": case.fired_rules,
            "rules_version": case.rules_version,
            "flags": case.flags,
            "overridden": case.tier_overridden,
            "list_number": case.list_number,
            "list_position": case.list_position,
        },
        "deadlines": deadlines,
        "expected_decision_date": case.expected_decision_date,
        "production_stops_before_decision": stops_before_decision(
            case.production_stop_date, case.expected_decision_date
        ),
        "points_of_contact": {
            "EU": _official_ref(casework, case.eu_contact_id),
            "CN": _official_ref(casework, case.cn_contact_id),
        },
        "information_requests": [
            {
                "id": r.id,
                "question": r.question,
                "status": r.status,
                "due": r.due,
                "asked_by_side": r.asked_by_side,
                "asked_at": r.asked_at,
                "answer": r.answer,
                "answered_at": r.answered_at,
                "document_ids": r.document_ids,
            }
            for r in requests
        ],
        "documents": [document_entry(d) for d in documents_of(session, case.id)],
        "notes": [
            {
                "id": n.id,
                "visibility": n.visibility,
                "text": n.text,
                "at": n.created_at,
                "author": {"id": n.author_id, "name": n.author_name, "side": n.author_side},
            }
            for n in notes_of(session, case.id)
        ],
        "licence": casework.licence_view(session, licence) if licence else None,
        "proposals": [
            {
                "id": proposal.id,
                "action": proposal.action,
                "side": proposal.side,
                "params": proposal.params,
                "status": proposal.status,
                "proposed_at": proposal.proposed_at,
                "proposed_by": {
                    "id": proposal.proposed_by_id,
                    "name": proposal.proposed_by_name,
                    "role": proposal.proposed_by_role,
                },
            }
        ]
        if proposal is not None and proposal.status == "pending"
        else [],
        "joint_meetings": [_meeting(casework, a) for a in records if _meeting_of(a)],
        "history": [_entry(a) for a in records],
    }


def _meeting_of(a: AuditRecord) -> dict[str, Any] | None:
    meeting = a.payload.get("meeting")
    return meeting if isinstance(meeting, dict) else None


def _meeting(casework: Casework, a: AuditRecord) -> dict[str, Any]:
    """The joint meeting recorded by the action that took the case out of joint review."""
    meeting = _meeting_of(a) or {}
    participants = []
    for official_id in meeting.get("participants") or []:
        official = casework.directory.official(str(official_id))
        participants.append(
            {
                "id": official_id,
                "name": official.name if official else "",
                "side": official.side if official else "",
            }
        )
    return {
        "action": a.action,
        "at": a.at,
        "held_on": meeting.get("held_on"),
        "outcome": meeting.get("outcome"),
        "participants": participants,
    }


def _entry(a: AuditRecord) -> dict[str, Any]:
    return {
        "id": a.id,
        "seq": a.seq,
        "actor": {"id": a.actor_id, "side": a.actor_side, "role": a.actor_role},
        "action": a.action,
        "at": a.at,
        "from_state": a.from_state,
        "to_state": a.to_state,
        "payload": a.payload,
    }


def side_view(
    session: Session, casework: Casework, case: Case, principal: Principal
) -> dict[str, Any]:
    records = audit_of(session, case.id)
    view = view_for(side_of(principal), full_case(session, casework, case, records))
    # The history a side is shown is its own view chain: its seq, its hashes (F1, F6).
    view["history"] = history_for(side_of(principal), records)
    who = Who.official(principal)
    view["allowed_actions"] = casework.allowed_actions(case, who)
    proposal = pending_proposal(session, case)
    for shown in view.get("proposals", []):
        # What the caller may do with a proposal of their side (the other side sees none).
        shown["allowed"] = casework.proposal_verbs(proposal, who) if proposal else []
    return view
