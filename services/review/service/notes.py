"""Notes on a case and who on each side is its point of contact."""

from __future__ import annotations

from sqlmodel import Session

from services.review.domain.errors import FieldError, InvalidAssignee
from services.review.service.core import CaseworkCore
from services.review.service.who import Who
from services.review.store import Case, Note
from shared.i18n import N_

__all__ = ["NotesAndAssignment"]


class NotesAndAssignment(CaseworkCore):
    def add_note(self, session: Session, case: Case, who: Who, text: str, visibility: str) -> Note:
        scope = "joint" if visibility == "joint" else who.side.lower()
        self._lock_case(session, case)
        note = Note(
            case_id=case.id,
            author_id=who.id,
            author_name=who.name,
            author_side=who.side,
            visibility=scope,
            text=text,
            created_at=self.now(),
        )
        session.add(note)
        session.flush()
        self._audit(
            session,
            case,
            who,
            "note_added",
            case.state,
            case.state,
            {"note_id": note.id, "visibility": scope, "text": text},
        )
        session.add(case)
        return note

    def assign(self, session: Session, case: Case, who: Who, official_id: str | None) -> Case:
        """Make `official_id` (by default the acting official) their side's contact."""
        target = official_id or who.id
        official = self.directory.official(target)
        if official is None or official.side != who.side:
            raise InvalidAssignee(
                N_("The official must exist and be of your side."),
                [FieldError("official_id", "no such official of your side")],
            )
        if not self.directory.can_sign_in(target):
            raise InvalidAssignee(
                N_("The official's credentials are all revoked; they cannot take a case."),
                [FieldError("official_id", "the official's access is revoked")],
            )
        if target != who.id:
            self.require(
                who,
                "assign_other_official",
                N_("Only a supervisor may assign a case to someone else."),
            )
        self._lock_case(session, case)
        self._set_contact(session, case, who.side, target)
        self._audit(
            session,
            case,
            who,
            "assigned",
            case.state,
            case.state,
            {"side": who.side, "official_id": target},
        )
        session.add(case)
        return case
