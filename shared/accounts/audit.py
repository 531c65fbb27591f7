"""The audit of people: sign-ins, failures, sign-outs, invitations, resets, role changes.

Each line is written in the same transaction as what it records (a person disabled and
not audited cannot happen); sign-in failures are written on their own, as nothing else is.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from shared.accounts.models import Person, PersonEvent
from shared.db import session_scope


class Action(StrEnum):
    invited = "invited"
    invitation_accepted = "invitation_accepted"
    reset_requested = "reset_requested"
    password_reset = "password_reset"
    signed_in = "signed_in"
    sign_in_failed = "sign_in_failed"
    sign_in_delayed = "sign_in_delayed"
    signed_out = "signed_out"
    disabled = "disabled"
    enabled = "enabled"
    role_changed = "role_changed"
    # A company's API keys (shared/accounts/company.py): the detail names company, key, name.
    key_created = "key_created"
    key_revoked = "key_revoked"
    language_changed = "language_changed"


def record(session: Session, action: Action, about: Person | None = None, /, **fields: Any) -> None:
    """Add a line: `about` names the person (id and e-mail); `fields` are PersonEvent's
    (`person_id`, `email` for whoever is not a person yet, `actor`, `address`, `detail`)."""
    if about is not None:
        fields |= {"person_id": about.id, "email": about.email}
    if fields.get("detail") is not None:
        fields["detail"] = fields["detail"][:500]
    if fields.get("address") is not None:
        fields["address"] = fields["address"][:64]
    session.add(PersonEvent(action=action, **fields))


def record_alone(engine: Engine, action: Action, **fields: Any) -> None:
    with session_scope(engine) as session:
        record(session, action, **fields)


def events(engine: Engine, since: datetime | None = None, limit: int = 10_000) -> list[PersonEvent]:
    """The audit, oldest first, from `since` on."""
    with Session(engine) as session:
        query = select(PersonEvent)
        if since is not None:
            query = query.where(col(PersonEvent.at) >= since)
        query = query.order_by(col(PersonEvent.at), col(PersonEvent.id)).limit(limit)
        return list(session.exec(query).all())


def as_dict(event: PersonEvent) -> dict[str, Any]:
    return {
        "at": event.at.isoformat(),
        "action": event.action,
        "person_id": event.person_id,
        "email": event.email,
        "actor": event.actor,
        "address": event.address,
        "detail": event.detail,
    }
