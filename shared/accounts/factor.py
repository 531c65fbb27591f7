"""A person's second factor in use: each code is taken once.

A code stays valid for its 30 s step and one step either side (shared/accounts/totp.py), so
whoever sees it typed could use it again within that window. The step of every code
accepted is kept on the person (`people.totp_last_step`); a code of that step or an earlier
one is refused after. The step is claimed by a conditional update, so of two uses of one
code at once only one succeeds.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import or_, update
from sqlmodel import Session

from shared.accounts import totp
from shared.accounts.models import Person


class CodeCheck(StrEnum):
    accepted = "accepted"
    wrong = "wrong code"
    replayed = "code used before"


def take_code(session: Session, person: Person, code: str, claim: bool = True) -> CodeCheck:
    """Check the person's code and, when right and new, mark its step used (in `session`'s
    transaction: the caller's refusal rolls it back). `claim=False` only checks (a disabled
    person is told so, and their code stays unused)."""
    if not person.totp_secret:
        return CodeCheck.wrong
    step = totp.matched_step(person.totp_secret, code)
    if step is None:
        return CodeCheck.wrong
    if not claim:
        used = person.totp_last_step is not None and person.totp_last_step >= step
        return CodeCheck.replayed if used else CodeCheck.accepted
    table = Person.__table__  # type: ignore[attr-defined]
    claimed = session.execute(
        update(table)
        .where(
            table.c.id == person.id,
            or_(table.c.totp_last_step.is_(None), table.c.totp_last_step < step),
        )
        .values(totp_last_step=step)
    )
    taken = claimed.rowcount == 1  # type: ignore[attr-defined]
    return CodeCheck.accepted if taken else CodeCheck.replayed
