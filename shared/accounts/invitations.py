"""Single-use links: invitations to become a person, and password resets.

A link carries a random token; only its SHA-256 is stored. Accepting one checks, in one
transaction that also creates the person (or sets the new password): the link is known,
unused and unexpired, its inviter still enabled (and still an admin of the company, for a
colleague), the password meets the rules, and, for an official (who must have one) or
whoever chose one, that the code of the new TOTP factor is right. Anything refused leaves
nothing behind: no person, no official record, and the link still unused.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from shared.accounts import audit, totp
from shared.accounts.audit import Action
from shared.accounts.errors import Conflict, InvalidInput, LinkRefused, NotAllowed, NotFound
from shared.accounts.factor import CodeCheck, take_code
from shared.accounts.models import Invitation, InvitationPurpose, Person, PersonKind, StaffRole
from shared.accounts.passwords import Passwords, check_new_password
from shared.accounts.people import by_email, normalise_email
from shared.accounts.sessions import Sessions
from shared.config import CommonSettings
from shared.db import session_scope, utcnow
from shared.directory import Company, Official, Role, Side

INVITATION_LIFETIME = timedelta(days=7)
RESET_LIFETIME = timedelta(hours=1)
LINK_PREFIX = "ree_in_"
OPERATOR = "operator:"


@dataclass(frozen=True)
class Answer:
    """What the person fills in on an invitation's page."""

    password: str
    # The new factor's secret (shown as a QR code, sent back with the form) and its code.
    totp_secret: str | None = None
    code: str = ""


class LinkSettings(CommonSettings):
    """Where the links lead: the console for officials, the companies' portal for staff."""

    console_url: str = Field("http://127.0.0.1:8002", alias="REE_CONSOLE_URL")
    portal_url: str = Field("http://127.0.0.1:8001", alias="REE_PORTAL_URL")


@dataclass(frozen=True)
class Link:
    """A link just made: its token (shown or sent once) and its record."""

    token: str
    invitation: Invitation

    def url(self, settings: LinkSettings) -> str:
        base = (
            settings.console_url
            if self.invitation.kind == PersonKind.official
            else (settings.portal_url)
        )
        page = "invitation" if self.invitation.purpose == InvitationPurpose.invite else "reset"
        return f"{base.rstrip('/')}/{page}?token={self.token}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("name must be 1 to 200 characters", field="name")
    return name


class Invitations:
    def __init__(self, engine: Engine, passwords: Passwords, sessions: Sessions) -> None:
        self.engine = engine
        self.passwords = passwords
        self.sessions = sessions

    # --- issuing ------------------------------------------------------------------------------

    def invite_official(
        self, email: str, name: str, side: str, role: str, by: str = OPERATOR + "cli"
    ) -> Link:
        """An operator invites an official of a side, with a role."""
        try:
            side_v, role_v = Side(side.strip().upper()), Role(role.strip().lower())
        except ValueError as exc:
            raise InvalidInput("side must be EU or CN; role officer or supervisor") from exc
        return self._issue(_invitation(email, name, PersonKind.official, role_v, by, side=side_v))

    def invite_staff(
        self,
        company_id: str,
        email: str,
        name: str,
        role: str = StaffRole.admin,
        by: str = OPERATOR + "cli",
    ) -> Link:
        """A company's staff member: its first admin by an operator, colleagues by an admin."""
        try:
            role_v = StaffRole(role.strip().lower())
        except ValueError as exc:
            raise InvalidInput("role must be admin or member", field="role") from exc
        invitation = _invitation(email, name, PersonKind.staff, role_v, by, company_id=company_id)
        with Session(self.engine) as session:
            if session.get(Company, company_id) is None:
                raise NotFound("no company with id %(id)s", field="company", id=company_id)
            self._check_inviter(session, invitation)
        return self._issue(invitation)

    def _issue(self, invitation: Invitation) -> Link:
        token = LINK_PREFIX + secrets.token_urlsafe(32)
        invitation.token_hash = _hash(token)
        with session_scope(self.engine) as session:
            if by_email(session, invitation.email) is not None:
                raise Conflict("someone has this e-mail address already", field="email")
            self._check_inviter(session, invitation)
            session.add(invitation)
            audit.record(
                session, Action.invited, email=invitation.email, **_by_and_what(invitation)
            )
        return Link(token, invitation)

    def _check_inviter(self, session: Session, invitation: Invitation) -> None:
        if invitation.invited_by.startswith(OPERATOR):
            return  # the operator's command line: whoever runs it holds the database
        inviter = session.get(Person, invitation.invited_by)
        if inviter is None or inviter.disabled_at is not None:
            raise NotAllowed("the person who invited is disabled")
        if (
            invitation.kind != PersonKind.staff
            or inviter.company_id != invitation.company_id
            or inviter.role != StaffRole.admin
        ):
            raise NotAllowed("only an admin of the company invites its colleagues")

    # --- accepting ----------------------------------------------------------------------------

    def pending(self, token: str) -> Invitation:
        """The open invitation of a link (to show the form), or LinkRefused."""
        with Session(self.engine) as session:
            return self._open(session, token, InvitationPurpose.invite)

    def accept(self, token: str, answer: Answer, address: str | None = None) -> Person:
        """Become the invited person: set the password and, for an official, the TOTP factor
        (its secret shown as `totp.qr_svg` and confirmed with a `code`)."""
        password, totp_secret, code = answer.password, answer.totp_secret, answer.code
        with session_scope(self.engine) as session:
            invitation = self._open(session, token, InvitationPurpose.invite)
            self._check_inviter(session, invitation)
            _check_password(password, invitation.email)
            if invitation.kind == PersonKind.official and not totp_secret:
                raise InvalidInput("an official needs a second factor (TOTP)", field="code")
            step = _new_factor_step(totp_secret, code)
            if by_email(session, invitation.email) is not None:
                raise Conflict("someone has this e-mail address already", field="email")
            person = Person(
                **_who(invitation),
                password_hash=self.passwords.hash(password),
                totp_secret=totp_secret or None,
                # The code that confirmed the factor is used: it does not sign in after.
                totp_last_step=step,
            )
            session.add(person)
            if invitation.kind == PersonKind.official:
                session.add(
                    Official(
                        id=person.id,
                        name=person.name,
                        side=invitation.side or "",
                        role=invitation.role,
                    )
                )
            _use(session, invitation)
            audit.record(
                session,
                Action.invitation_accepted,
                person,
                address=address,
                **_by_and_what(invitation),
            )
            try:
                session.flush()
            except IntegrityError as exc:
                # A second acceptance racing this one for the same e-mail.
                raise Conflict("someone has this e-mail address already", field="email") from exc
            return person

    # --- password reset -----------------------------------------------------------------------

    def request_reset(self, email: str, address: str | None = None) -> Link | None:
        """A reset link for the person with this e-mail, or None if there is none (the caller
        answers the same either way)."""
        try:
            email = normalise_email(email)
        except InvalidInput:
            return None
        token = LINK_PREFIX + secrets.token_urlsafe(32)
        with session_scope(self.engine) as session:
            person = by_email(session, email)
            if person is None or person.disabled_at is not None:
                return None
            invitation = Invitation(
                purpose=InvitationPurpose.reset,
                token_hash=_hash(token),
                **_who(person),
                invited_by=person.id,
                person_id=person.id,
                expires_at=utcnow() + RESET_LIFETIME,
            )
            session.add(invitation)
            audit.record(session, Action.reset_requested, person, address=address)
        return Link(token, invitation)

    def reset(
        self, token: str, password: str, code: str | None = None, address: str | None = None
    ) -> Person:
        """Set a new password by a reset link (and the person's code, if they have a factor:
        the e-mail alone must not be enough). Every session of theirs ends."""
        with session_scope(self.engine) as session:
            invitation = self._open(session, token, InvitationPurpose.reset)
            person = session.get(Person, invitation.person_id or "")
            if person is None or person.disabled_at is not None:
                raise NotAllowed("this account is disabled")
            _check_password(password, person.email)
            if person.totp_secret and take_code(session, person, code or "") != CodeCheck.accepted:
                raise InvalidInput("the code is wrong", field="code")
            person.password_hash = self.passwords.hash(password)
            session.add(person)
            _use(session, invitation)
            ended = self.sessions.end_all(session, person.id)
            audit.record(
                session, Action.password_reset, person, address=address, detail=f"{ended} ended"
            )
            return person

    @staticmethod
    def _open(session: Session, token: str, purpose: InvitationPurpose) -> Invitation:
        invitation = session.exec(
            select(Invitation).where(Invitation.token_hash == _hash(token or ""))
        ).first()
        if invitation is None or invitation.purpose != purpose:
            raise LinkRefused("this link is not valid")
        if invitation.used_at is not None:
            raise LinkRefused("this link has been used already")
        if _aware(invitation.expires_at) <= utcnow():
            raise LinkRefused("this link has expired; ask for a new one")
        return invitation


def _use(session: Session, invitation: Invitation) -> None:
    """Mark the link used, if no one else has meanwhile: of two acceptances at once, the
    second waits for the first's row lock, then finds it used and changes nothing."""
    table = Invitation.__table__  # type: ignore[attr-defined]
    done = session.execute(
        update(table)
        .where(table.c.id == invitation.id, table.c.used_at.is_(None))
        .values(used_at=utcnow())
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkRefused("this link has been used already")


def _new_factor_step(totp_secret: str | None, code: str) -> int | None:
    """The time-step of the code that confirms a new factor (None: no factor chosen)."""
    if not totp_secret:
        return None
    if not totp.is_secret(totp_secret):
        raise InvalidInput("the second factor's secret is malformed; reload the page", "code")
    step = totp.matched_step(totp_secret, code)
    if step is None:
        raise InvalidInput("the code does not match the new second factor", field="code")
    return step


def _check_password(password: str, email: str) -> None:
    check_new_password(password, email)  # WeakPassword: an InvalidInput of the password


# What an invitation says of the person, and what the person's record keeps of it.
WHO = ("email", "name", "kind", "side", "company_id", "role")


def _who(record: Invitation | Person) -> dict[str, Any]:
    return {field: getattr(record, field) for field in WHO}


def _invitation(
    email: str, name: str, kind: PersonKind, role: str, by: str, **where: str | None
) -> Invitation:
    """An invitation to become a person (its token hash set when issued)."""
    return Invitation(
        purpose=InvitationPurpose.invite,
        token_hash="",
        email=normalise_email(email),
        name=_name(name),
        kind=kind,
        role=role,
        invited_by=by,
        expires_at=utcnow() + INVITATION_LIFETIME,
        side=where.get("side"),
        company_id=where.get("company_id"),
    )


def _by_and_what(invitation: Invitation) -> dict[str, str]:
    """The audit's actor and detail of an invitation: who invited whom as what."""
    where = invitation.side if invitation.kind == PersonKind.official else invitation.company_id
    return {
        "actor": invitation.invited_by,
        "detail": f"{invitation.kind} {invitation.role} of {where}",
    }
