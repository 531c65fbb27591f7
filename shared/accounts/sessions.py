"""Server-side sessions of people: opened at sign-in, looked up on every request, ended.

The browser holds only an opaque random id; the database holds its SHA-256 as a credential
of kind `session` (the same table and unique index as every other credential) beside a
session row with the person and the times. A session ends at sign-out, after
`REE_SESSION_IDLE_MINUTES` without a request, `REE_SESSION_MAX_HOURS` after sign-in, when
the person is disabled, and when their credentials are revoked
(`reechannel credential revoke <person id>`, or the session's own id). The lookup reads all
of that in one query on the unique index, so a change takes effect at once in every
service and replica.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import Field
from sqlalchemy import bindparam, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from starlette.responses import Response

from shared.accounts.models import AccountSession, Person
from shared.config import CommonSettings
from shared.db import utcnow
from shared.directory import SESSION_KIND, Credential

SESSION_PREFIX = "ree_ss_"
# The console's cookie, and the companies' portal's: under `make run` the two share a host,
# and each sign-in must keep its own cookie, never replace the other's.
COOKIE_NAME = "ree_session"
PORTAL_COOKIE_NAME = "ree_portal_session"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# A session's last-seen time is written at most this often: a lookup is a read, not a write.
TOUCH_EVERY = timedelta(seconds=60)


class SessionSettings(CommonSettings):
    session_idle_minutes: float = Field(30, gt=0, alias="REE_SESSION_IDLE_MINUTES")
    session_max_hours: float = Field(12, gt=0, alias="REE_SESSION_MAX_HOURS")


@dataclass(frozen=True)
class SignedIn:
    """The person behind a session cookie, as a request handler needs them."""

    session_id: str
    person_id: str
    kind: str
    email: str
    name: str
    role: str
    side: str | None
    company_id: str | None

    # What a session's lookup reads of the person, in this order after the ids.
    PERSON_FIELDS: ClassVar[tuple[str, ...]] = (
        "kind",
        "email",
        "name",
        "role",
        "side",
        "company_id",
    )


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _lookup_query() -> Any:
    # Sessions, their credentials and people: one row by the credentials' unique index.
    held_by = col(AccountSession.person_id) == col(Person.id)
    same_id = col(AccountSession.id) == col(Credential.id)
    wanted = [
        *(col(c) for c in (AccountSession.id, AccountSession.created_at)),
        *(col(c) for c in (AccountSession.last_seen_at, AccountSession.ended_at)),
        col(Credential.revoked_at),
        col(Person.id).label("person_id"),
        *(col(getattr(Person, name)) for name in SignedIn.PERSON_FIELDS),
        col(Person.disabled_at),
    ]
    return (
        sa_select(*wanted)
        .select_from(Credential)
        .join(AccountSession, same_id)
        .join(Person, held_by)
        .where(
            col(Credential.secret_hash) == bindparam("secret_hash"),
            col(Credential.kind) == SESSION_KIND,
        )
    )


_LOOKUP = _lookup_query()


class Sessions:
    def __init__(self, engine: Engine, settings: SessionSettings | None = None) -> None:
        settings = settings or SessionSettings()
        self.engine = engine
        self.idle = timedelta(minutes=settings.session_idle_minutes)
        self.max_age = timedelta(hours=settings.session_max_hours)

    def open(self, session: Session, person_id: str, address: str | None = None) -> str:
        """A new session for the person, in the caller's transaction; returns its secret."""
        secret = SESSION_PREFIX + secrets.token_urlsafe(32)
        held = AccountSession(id=str(uuid.uuid4()), person_id=person_id, address=address)
        session.add(
            Credential(
                id=held.id, kind=SESSION_KIND, subject_id=person_id, secret_hash=_hash(secret)
            )
        )
        session.add(held)
        return secret

    def lookup(self, secret: str | None, now: datetime | None = None) -> SignedIn | None:
        """The signed-in person of a session secret, or None (unknown, ended, expired...)."""
        if not secret or not secret.startswith(SESSION_PREFIX):
            return None
        now = now or utcnow()
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            row = conn.execute(_LOOKUP, {"secret_hash": _hash(secret)}).first()
            if row is None or not self._alive(row, now):
                return None
            if now - _aware(row.last_seen_at) >= TOUCH_EVERY:
                table = AccountSession.__table__  # type: ignore[attr-defined]
                conn.execute(update(table).where(table.c.id == row.id).values(last_seen_at=now))
        return SignedIn(row.id, row.person_id, *(getattr(row, f) for f in SignedIn.PERSON_FIELDS))

    def _alive(self, row: Any, now: datetime) -> bool:
        return (
            row.ended_at is None
            and row.revoked_at is None
            and row.disabled_at is None
            and now - _aware(row.last_seen_at) < self.idle
            and now - _aware(row.created_at) < self.max_age
        )

    def end(self, session: Session, secret: str) -> str | None:
        """End the session of this secret (sign-out); returns its person's id if it was open."""
        if not secret.startswith(SESSION_PREFIX):
            return None
        found = session.exec(
            select(Credential).where(
                Credential.secret_hash == _hash(secret), Credential.kind == SESSION_KIND
            )
        ).first()
        if found is None or found.revoked_at is not None:
            return None
        self._end(session, [found.id])
        return found.subject_id

    def end_all(self, session: Session, person_id: str) -> int:
        """End every open session of a person (disabled, password reset)."""
        open_ids = session.exec(
            select(Credential.id).where(
                Credential.subject_id == person_id,
                Credential.kind == SESSION_KIND,
                col(Credential.revoked_at).is_(None),
            )
        ).all()
        self._end(session, list(open_ids))
        return len(open_ids)

    def _end(self, session: Session, ids: list[str]) -> None:
        if not ids:
            return
        now = utcnow()
        credentials = Credential.__table__  # type: ignore[attr-defined]
        held = AccountSession.__table__  # type: ignore[attr-defined]
        session.execute(update(credentials).where(credentials.c.id.in_(ids)).values(revoked_at=now))
        session.execute(update(held).where(held.c.id.in_(ids)).values(ended_at=now))


def _aware(value: datetime) -> datetime:
    # SQLite gives naive datetimes back; every time stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def is_local(host: str | None) -> bool:
    return (host or "").strip("[]") in LOCAL_HOSTS


def set_session_cookie(
    response: Response,
    secret: str,
    host: str | None,
    max_age_s: int,
    cookie: str = COOKIE_NAME,
) -> None:
    """The session cookie: HttpOnly (no script reads it), SameSite=Strict (no other site's
    page sends it), Secure unless the page is on this machine (plain HTTP there)."""
    response.set_cookie(
        cookie,
        secret,
        max_age=max_age_s,
        httponly=True,
        samesite="strict",
        secure=not is_local(host),
        path="/",
    )


def clear_session_cookie(response: Response, host: str | None, cookie: str = COOKIE_NAME) -> None:
    response.delete_cookie(
        cookie, path="/", httponly=True, samesite="strict", secure=not is_local(host)
    )
