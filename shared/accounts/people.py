"""People: looked up by e-mail, disabled and enabled, their role and language changed, all
audited.

Disabling a person ends their sessions in the same transaction; so does a role change
(the next sign-in shows the new role everywhere at once).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from shared.accounts import audit
from shared.accounts.audit import Action
from shared.accounts.errors import Conflict, InvalidInput, NotFound
from shared.accounts.models import Person, PersonKind, StaffRole
from shared.accounts.sessions import Sessions
from shared.db import session_scope, utcnow
from shared.directory import Official, Role
from shared.i18n import LANGUAGES, match_language

MAX_EMAIL = 254
# Deliberately loose: one @, something either side, a dot in the domain, no spaces.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_email(email: str) -> str:
    """The e-mail as stored and compared: trimmed, lower case (unique in this form)."""
    value = email.strip().lower()
    if len(value) > MAX_EMAIL or not EMAIL_PATTERN.match(value):
        raise InvalidInput("not an e-mail address", field="email")
    return value


def roles_of(kind: str) -> tuple[str, ...]:
    if kind == PersonKind.official:
        return tuple(r.value for r in Role)
    return tuple(r.value for r in StaffRole)


# Checked in the transaction of a change, before it is made (shared/accounts/company.py: a
# company keeps an admin); raises an AccountError to refuse it.
Guard = Callable[[Session, Person], None]


def by_email(session: Session, email: str) -> Person | None:
    return session.exec(select(Person).where(Person.email == email)).first()


class People:
    def __init__(self, engine: Engine, sessions: Sessions) -> None:
        self.engine = engine
        self.sessions = sessions

    def get(self, person_id: str) -> Person | None:
        with Session(self.engine) as session:
            return session.get(Person, person_id)

    def find(self, email: str) -> Person | None:
        with Session(self.engine) as session:
            return by_email(session, normalise_email(email))

    def of_company(self, company_id: str) -> list[Person]:
        with Session(self.engine) as session:
            return list(session.exec(select(Person).where(Person.company_id == company_id)))

    def disable(self, person_id: str, by: str, guard: Guard | None = None) -> int:
        """Disable the person and end every session of theirs; returns how many ended."""
        with session_scope(self.engine) as session:
            person = self._get(session, person_id)
            if person.disabled_at is not None:
                raise Conflict("the person is disabled already")
            if guard is not None:
                guard(session, person)
            person.disabled_at = utcnow()
            session.add(person)
            ended = self.sessions.end_all(session, person.id)
            audit.record(
                session, Action.disabled, person, actor=by, detail=f"{ended} session(s) ended"
            )
            return ended

    def enable(self, person_id: str, by: str) -> None:
        with session_scope(self.engine) as session:
            person = self._get(session, person_id)
            if person.disabled_at is None:
                raise Conflict("the person is not disabled")
            person.disabled_at = None
            session.add(person)
            audit.record(session, Action.enabled, person, actor=by)

    def change_role(self, person_id: str, role: str, by: str, guard: Guard | None = None) -> None:
        with session_scope(self.engine) as session:
            person = self._get(session, person_id)
            role = role.strip().lower()
            if role not in roles_of(person.kind):
                roles = ", ".join(roles_of(person.kind))
                raise InvalidInput("role must be one of %(roles)s", field="role", roles=roles)
            if role == person.role:
                raise Conflict("the person is %(role)s already", role=role)
            if guard is not None:
                guard(session, person)
            before, person.role = person.role, role
            session.add(person)
            if person.kind == PersonKind.official:
                # The official's record (tokens for programs, points of contact) follows.
                official = session.get(Official, person.id)
                if official is not None:
                    official.role = role
                    session.add(official)
            self.sessions.end_all(session, person.id)
            audit.record(
                session, Action.role_changed, person, actor=by, detail=f"{before} -> {role}"
            )

    @staticmethod
    def checked_language(language: str) -> str:
        """The language as stored, or InvalidInput if it is not one the channel writes in."""
        tag = match_language(language.strip()[:35], LANGUAGES) if language.strip() else None
        if tag is None:
            raise InvalidInput(
                "language must be one of %(languages)s",
                field="language",
                languages=", ".join(LANGUAGES),
            )
        return tag

    def set_language(self, person_id: str, language: str, by: str) -> str:
        """Set the language the person is e-mailed in (an official's: the console's too, kept
        with the official); returns the tag as stored (`zh-CN` is `zh-Hans`)."""
        tag = self.checked_language(language)
        with session_scope(self.engine) as session:
            person = self._get(session, person_id)
            if person.kind == PersonKind.official:
                official = session.get(Official, person.id)
                if official is None:
                    raise NotFound("no official with id %(id)s", id=person_id)
                before, official.language = official.language, tag
                session.add(official)
            else:
                before, person.language = person.language, tag
                session.add(person)
            audit.record(
                session, Action.language_changed, person, actor=by, detail=f"{before} -> {tag}"
            )
        return tag

    @staticmethod
    def _get(session: Session, person_id: str) -> Person:
        person = session.get(Person, person_id)
        if person is None:
            raise NotFound("no person with id %(id)s", id=person_id)
        return person
