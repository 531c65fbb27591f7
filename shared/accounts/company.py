"""A company's own administration: its API keys and its colleagues, for the portal and the
operator's command line alike (docs/accounts.md, "A company's keys and colleagues").

The decisions are the pure functions at the top (no I/O: they are given what was read);
`CompanyAdmin` reads, applies them and writes, each change in one transaction with its
audit line. Who acts is an `Actor`: an admin of the company (a member is refused, 403; a
person of another company finds nothing, 404), or an operator at the command line.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select as sa_select
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from shared.accounts import audit
from shared.accounts.audit import Action
from shared.accounts.errors import Conflict, InvalidInput, NotAllowed, NotFound
from shared.accounts.invitations import Invitations, Link
from shared.accounts.models import Invitation, InvitationPurpose, Person, PersonKind, StaffRole
from shared.accounts.people import Guard, People
from shared.db import session_scope, utcnow
from shared.directory import Company, Credential, CredentialKind, new_api_key

MAX_KEY_NAME = 100
OPERATOR_CLI = "operator:cli"


@dataclass(frozen=True)
class Actor:
    """Who asks: a person of a company's staff with their role, or an operator."""

    id: str
    company_id: str | None = None  # None: an operator, for any company
    role: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.company_id is None


OPERATOR = Actor(OPERATOR_CLI)


@dataclass(frozen=True)
class ApiKey:
    """What is shown of a key: never its secret (only its hash is stored)."""

    id: str
    company_id: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def live(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "company_id": self.company_id,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
        }


@dataclass(frozen=True)
class Colleague:
    """A person of the company's staff, or someone invited who has not accepted yet."""

    id: str
    name: str
    email: str
    role: str
    status: str  # active | disabled | invited


# --- the rules (no I/O) -----------------------------------------------------------------------


def check_may_manage(actor: Actor, company_id: str) -> None:
    """An operator manages any company; a person only their own, and only as its admin."""
    if actor.is_operator:
        return
    if actor.company_id != company_id:
        raise NotFound("no company with id %(id)s", id=company_id)
    if actor.role != StaffRole.admin:
        raise NotAllowed("only an admin of the company manages its API keys and colleagues")


def key_name(name: str, live_names: Collection[str | None]) -> str:
    """The name of a new key: 1 to 100 characters, not that of another live key (case aside)."""
    value = " ".join(name.split())
    if not value or len(value) > MAX_KEY_NAME:
        raise InvalidInput("a key's name has 1 to %(n)s characters", field="name", n=MAX_KEY_NAME)
    if value.casefold() in {n.casefold() for n in live_names if n is not None}:
        raise Conflict("another key in use has this name", field="name")
    return value


def check_revocable(key: ApiKey | None, key_id: str, company_id: str | None) -> ApiKey:
    """A key of this company (any company: None) that is still live. Revoking twice is a
    conflict (409), so that a second click tells the admin the key is gone already."""
    if key is None or (company_id is not None and key.company_id != company_id):
        raise NotFound("no API key with id %(id)s", id=key_id)
    if not key.live:
        raise Conflict("this key is revoked already")
    return key


def check_colleague(person: Person | None, person_id: str, company_id: str) -> Person:
    if person is None or person.kind != PersonKind.staff or person.company_id != company_id:
        raise NotFound("no colleague with id %(id)s", id=person_id)
    return person


def check_keeps_an_admin(admins: Sequence[str], person: Person, actor: Actor) -> None:
    """A change by the company's staff that would leave it without an enabled admin (the
    last admin demoting or disabling themselves) is refused: someone has to manage it. An
    operator may (taking a company's people out of the channel)."""
    if not actor.is_operator and person.role == StaffRole.admin and list(admins) == [person.id]:
        raise Conflict("the company's last admin stays admin: make a colleague admin first")


def status_of(person: Person) -> str:
    return "disabled" if person.disabled_at is not None else "active"


# --- reading and writing ----------------------------------------------------------------------


def _key(credential: Credential) -> ApiKey:
    return ApiKey(
        credential.id,
        credential.subject_id,
        credential.name,
        credential.created_at,
        credential.revoked_at,
    )


def _company_keys(company_id: str) -> SelectOfScalar[Credential]:
    return select(Credential).where(
        Credential.subject_id == company_id, Credential.kind == CredentialKind.applicant
    )


class CompanyAdmin:
    """A company's API keys and colleagues, as its admin (or an operator) manages them."""

    def __init__(self, engine: Engine, people: People, invitations: Invitations) -> None:
        self.engine = engine
        self.people = people
        self.invitations = invitations

    # --- API keys -----------------------------------------------------------------------------

    def keys(self, actor: Actor, company_id: str, revoked: bool = False) -> list[ApiKey]:
        """The company's keys, newest first: the live ones, or every one with `revoked`."""
        check_may_manage(actor, company_id)
        with Session(self.engine) as session:
            self._company(session, company_id)
            query = _company_keys(company_id)
            if not revoked:
                query = query.where(col(Credential.revoked_at).is_(None))
            found = session.exec(query.order_by(col(Credential.created_at).desc()))
            return [_key(c) for c in found]

    def create_key(self, actor: Actor, company_id: str, name: str) -> tuple[ApiKey, str]:
        """A new named key; its secret is returned here once and never stored."""
        check_may_manage(actor, company_id)
        with session_scope(self.engine) as session:
            # The company's row locked: two keys of one name at once cannot both be made.
            self._company(session, company_id, lock=True)
            live = session.exec(
                _company_keys(company_id).where(col(Credential.revoked_at).is_(None))
            )
            value = key_name(name, [c.name for c in live])
            secret, secret_hash = new_api_key()
            credential = Credential(
                kind=CredentialKind.applicant,
                subject_id=company_id,
                secret_hash=secret_hash,
                name=value,
            )
            session.add(credential)
            session.flush()
            key = _key(credential)
            _audit_key(session, Action.key_created, actor, key)
        return key, secret

    def revoke_key(self, actor: Actor, key_id: str, company_id: str | None = None) -> ApiKey:
        """Revoke a key of the company (an operator: of whichever company holds it); every
        service refuses it from the next request on (credentials are never cached)."""
        if not actor.is_operator:
            company_id = actor.company_id
        if company_id is not None:
            check_may_manage(actor, company_id)
        with session_scope(self.engine) as session:
            credential = session.get(Credential, key_id)
            found = None
            if credential is not None and credential.kind == CredentialKind.applicant:
                found = _key(credential)
            key = check_revocable(found, key_id, company_id)
            now = utcnow()
            table = Credential.__table__  # type: ignore[attr-defined]
            changed = session.execute(
                update(table)
                .where(table.c.id == key.id, table.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict("this key is revoked already")  # by someone else, just now
            key = ApiKey(key.id, key.company_id, key.name, key.created_at, now)
            _audit_key(session, Action.key_revoked, actor, key)
        return key

    # --- colleagues ---------------------------------------------------------------------------

    def colleagues(self, actor: Actor, company_id: str) -> list[Colleague]:
        """The company's staff (admins first, then by name), then open invitations."""
        check_may_manage(actor, company_id)
        with Session(self.engine) as session:
            people = session.exec(
                select(Person).where(
                    Person.company_id == company_id, Person.kind == PersonKind.staff
                )
            ).all()
            invited = session.exec(
                select(Invitation).where(
                    Invitation.company_id == company_id,
                    Invitation.purpose == InvitationPurpose.invite,
                    col(Invitation.used_at).is_(None),
                    col(Invitation.expires_at) > utcnow(),
                )
            ).all()
        staff = sorted(people, key=lambda p: (p.role != StaffRole.admin, p.name.casefold()))
        return [Colleague(p.id, p.name, p.email, p.role, status_of(p)) for p in staff] + [
            Colleague(i.id, i.name, i.email, i.role, "invited")
            for i in sorted(invited, key=lambda i: i.created_at)
        ]

    def invite(self, actor: Actor, company_id: str, email: str, name: str, role: str) -> Link:
        check_may_manage(actor, company_id)
        who = name.strip() or email.strip().partition("@")[0]
        return self.invitations.invite_staff(company_id, email, who, role, by=actor.id)

    def change_role(self, actor: Actor, company_id: str, person_id: str, role: str) -> None:
        self._colleague(actor, company_id, person_id)
        self.people.change_role(person_id, role, by=actor.id, guard=self._keeps_admin(actor))

    def disable(self, actor: Actor, company_id: str, person_id: str) -> int:
        """Disable a colleague: their sessions end at once, in every service."""
        self._colleague(actor, company_id, person_id)
        return self.people.disable(person_id, by=actor.id, guard=self._keeps_admin(actor))

    def enable(self, actor: Actor, company_id: str, person_id: str) -> None:
        self._colleague(actor, company_id, person_id)
        self.people.enable(person_id, by=actor.id)

    def _colleague(self, actor: Actor, company_id: str, person_id: str) -> Person:
        check_may_manage(actor, company_id)
        return check_colleague(self.people.get(person_id), person_id, company_id)

    @staticmethod
    def _keeps_admin(actor: Actor) -> Guard:
        def guard(session: Session, person: Person) -> None:
            # The company's enabled admins, locked: two admins demoting themselves at once
            # see each other's change, and the second is refused.
            table = Person.__table__  # type: ignore[attr-defined]
            admins = session.execute(
                sa_select(table.c.id)
                .where(
                    table.c.company_id == person.company_id,
                    table.c.kind == PersonKind.staff,
                    table.c.role == StaffRole.admin,
                    table.c.disabled_at.is_(None),
                )
                .order_by(table.c.id)
                .with_for_update()
            ).scalars()
            check_keeps_an_admin(list(admins), person, actor)

        return guard

    @staticmethod
    def _company(session: Session, company_id: str, lock: bool = False) -> Company:
        query = select(Company).where(Company.id == company_id)
        company = session.exec(query.with_for_update() if lock else query).first()
        if company is None:
            raise NotFound("no company with id %(id)s", id=company_id)
        return company


def _audit_key(session: Session, action: Action, actor: Actor, key: ApiKey) -> None:
    audit.record(
        session,
        action,
        actor=actor.id,
        detail=f"company {key.company_id} key {key.id} name {key.name!r}",
    )
