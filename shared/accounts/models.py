"""The tables of personal accounts, in the credential directory's schema."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

from shared.db import utcnow

ACCOUNT_TABLES = ("people", "invitations", "account_sessions", "people_events")


def new_id() -> str:
    return str(uuid.uuid4())


class PersonKind(StrEnum):
    """An EU or CN official (side, role officer|supervisor: shared/directory.py's Role), or
    a company's staff member (company, StaffRole)."""

    official = "official"
    staff = "staff"


class StaffRole(StrEnum):
    admin = "admin"  # invites colleagues, manages the company's people and API keys
    member = "member"


class InvitationPurpose(StrEnum):
    """A link to become a person, or to set a person's new password."""

    invite = "invite"
    reset = "reset"


class Person(SQLModel, table=True):
    """An official (side, role) or a company's staff member (company, role admin|member).

    An official's id is also the id of their record in `officials`, so that review's points
    of contact and the audit name the same person whichever way they signed in.
    """

    __tablename__ = "people"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    kind: str = Field(max_length=10)
    email: str = Field(max_length=254, unique=True)
    name: str = Field(max_length=200)
    side: str | None = Field(default=None, max_length=2)
    company_id: str | None = Field(default=None, max_length=36, index=True)
    role: str = Field(max_length=20)
    password_hash: str = Field(max_length=200)
    # Base32 TOTP secret; None: no second factor (allowed for company staff only).
    totp_secret: str | None = Field(default=None, max_length=64)
    # The time-step of the last code accepted: that code, and every older one, is refused.
    totp_last_step: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    disabled_at: datetime | None = None
    # The language a staff member is e-mailed in (shared/i18n.py's LANGUAGES); an official's
    # is the console's, `officials.language`.
    language: str = Field(default="en", max_length=35, sa_column_kwargs={"server_default": "en"})


class Invitation(SQLModel, table=True):
    """A single-use link: an invitation to become a person, or a password reset of one."""

    __tablename__ = "invitations"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    purpose: str = Field(max_length=10)
    # SHA-256 of the link's token; the token itself is never stored.
    token_hash: str = Field(max_length=64, unique=True)
    email: str = Field(max_length=254)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=10)
    side: str | None = Field(default=None, max_length=2)
    company_id: str | None = Field(default=None, max_length=36)
    role: str = Field(max_length=20)
    # A person's id, or `operator:<name>` for an operator at the command line.
    invited_by: str = Field(max_length=100)
    # For a reset: whose password it sets.
    person_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class AccountSession(SQLModel, table=True):
    """A signed-in person. Its secret is a credential of kind `session` (same id) in
    `credentials`, so that revoking the person's credentials ends it too."""

    __tablename__ = "account_sessions"

    id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(max_length=36, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
    address: str | None = Field(default=None, max_length=64)


class PersonEvent(SQLModel, table=True):
    """One line of the people audit: who did what to which person, when, from where."""

    __tablename__ = "people_events"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    at: datetime = Field(default_factory=utcnow, index=True)
    action: str = Field(max_length=40)
    # The person concerned (None: a sign-in failure for an address that is nobody's).
    person_id: str | None = Field(default=None, max_length=36, index=True)
    email: str | None = Field(default=None, max_length=254)
    # Who did it: the person, another person's id, or `operator:<name>`.
    actor: str | None = Field(default=None, max_length=100)
    address: str | None = Field(default=None, max_length=64)
    detail: str | None = Field(default=None, max_length=500)
