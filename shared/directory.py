"""Who may use the channel: companies, officials and their credentials (issued by operators).

The directory is one small database that every service reads to check a credential locally,
without calling another service. API keys are random and stored only as SHA-256 hashes;
official and operator tokens are signed (HMAC) and carry side and role, and are also checked
against the directory so that a revocation takes effect at once everywhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Select, bindparam
from sqlalchemy import false as sa_false
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from shared.accounts.models import Person
from shared.config import CommonSettings
from shared.db import make_engine, migrate, session_scope, utcnow
from shared.rawpg import RawConnections, RetrySafe

DIRECTORY = "directory"
# With the personal accounts' tables (shared/accounts/models.py), migrated here too.
DIRECTORY_TABLES = (
    "companies",
    "officials",
    "credentials",
    "people",
    "invitations",
    "account_sessions",
    "people_events",
)
MIGRATIONS = Path(__file__).parent / "migrations" / "directory"

API_KEY_PREFIX = "ree_ak_"
# A person's session is a credential of this kind (shared/accounts/sessions.py), no bearer.
SESSION_KIND = "session"
TOKEN_PREFIX = "ree_tk."
COMPANY_CACHE_SECONDS = 60.0
COMPANY_CACHE_SIZE = 10_000
# Officials' tokens for programs expire (issue 20); `--expires-in` chooses another lifetime.
OFFICIAL_TOKEN_LIFETIME = timedelta(days=90)
EORI_PATTERN = re.compile(r"^[A-Z]{2}[A-Z0-9]{1,15}$")
EU_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "EL",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
        "XI",
    ]
)


class Side(StrEnum):
    EU = "EU"
    CN = "CN"


class Role(StrEnum):
    officer = "officer"
    supervisor = "supervisor"


class CredentialKind(StrEnum):
    applicant = "applicant"
    official = "official"
    operator = "operator"


class Company(SQLModel, table=True):
    __tablename__ = "companies"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    eori: str = Field(max_length=17, unique=True)
    created_at: datetime = Field(default_factory=utcnow)


class Official(SQLModel, table=True):
    __tablename__ = "officials"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    side: str = Field(max_length=2)
    role: str = Field(max_length=20)
    created_at: datetime = Field(default_factory=utcnow)
    # The language the official reads the console in (BCP 47, e.g. zh-Hans); None: the
    # browser's Accept-Language decides (shared/i18n.py).
    language: str | None = Field(default=None, max_length=35)
    # Whether the official is e-mailed a daily digest of their side's cases due and overdue.
    digest: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})


class Credential(SQLModel, table=True):
    __tablename__ = "credentials"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    kind: str = Field(max_length=20)
    subject_id: str = Field(max_length=36, index=True)
    secret_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    # None: until revoked (API keys, operator tokens); officials' tokens get one.
    expires_at: datetime | None = None
    # What a company's admin calls an API key (several may be in use at once).
    name: str | None = Field(default=None, max_length=100)


@dataclass(frozen=True)
class DigestReader:
    """An official who asked for the daily digest, with where and in which language."""

    id: str
    name: str
    side: str
    # None: the official chose no language (the digest is in the default one).
    language: str | None
    email: str


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    kind: CredentialKind
    subject_id: str
    credential_id: str
    name: str
    side: Side | None = None
    role: Role | None = None
    # A company's staff member acting through a service that forwards their session
    # (shared/forwarded.py): who they are and their role (admin or member). None for a key.
    person_id: str | None = None
    staff_role: str | None = None

    @property
    def company_id(self) -> str | None:
        return self.subject_id if self.kind == CredentialKind.applicant else None


def _credential_query() -> Select[Any]:
    credential = Credential.__table__  # type: ignore[attr-defined]
    company = Company.__table__  # type: ignore[attr-defined]
    official = Official.__table__  # type: ignore[attr-defined]
    return (
        sa_select(
            credential.c.id,
            credential.c.kind,
            credential.c.subject_id,
            credential.c.revoked_at,
            credential.c.expires_at,
            company.c.id.label("company_id"),
            company.c.name.label("company_name"),
            official.c.id.label("official_id"),
            official.c.name.label("official_name"),
            official.c.side.label("official_side"),
            official.c.role.label("official_role"),
        )
        .select_from(
            credential.outerjoin(company, company.c.id == credential.c.subject_id).outerjoin(
                official, official.c.id == credential.c.subject_id
            )
        )
        .where(credential.c.secret_hash == bindparam("secret_hash"))
    )


_CREDENTIAL_QUERY = _credential_query()
# The same query as PostgreSQL text, for plain psycopg connections (%(name)s parameters).
_CREDENTIAL_SQL_PG = str(_CREDENTIAL_QUERY.compile(dialect=postgresql.dialect()))


def _fetch_credential(conn: psycopg.Connection[Any], secret_hash: str) -> Any:
    try:
        with conn.cursor(row_factory=namedtuple_row) as cursor:
            cursor.execute(_CREDENTIAL_SQL_PG, {"secret_hash": secret_hash})
            return cursor.fetchone()
    except psycopg.OperationalError as exc:
        raise RetrySafe(exc) from exc  # a read: always safe to try again


class DirectoryError(ValueError):
    """An operator's request the directory cannot honour (bad EORI, duplicate, unknown id)."""


class InvalidCredential(Exception):
    """Missing, malformed, forged, unknown or revoked credential."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    # SQLite hands datetimes back without their zone; every one stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_api_key() -> tuple[str, str]:
    """A new company API key and the SHA-256 stored for it (the key itself never is)."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, _hash(key)


def validate_eori(eori: str) -> str:
    value = eori.strip().upper().replace(" ", "")
    if not EORI_PATTERN.match(value) or value[:2] not in EU_COUNTRIES:
        raise DirectoryError(
            "EORI must be an EU country code followed by up to 15 letters or digits"
        )
    return value


class Directory:
    """Issues, verifies and revokes credentials."""

    def __init__(self, engine: Engine, token_secret: str, lookups: int = 10) -> None:
        self.engine = engine
        self._key = token_secret.encode()
        # Up to `lookups` connections of their own for the credential lookup of every request.
        self._lookups = (
            RawConnections(engine, size=lookups, autocommit=True)
            if engine.dialect.name == "postgresql"
            else None
        )
        # Company names and EORIs, for a minute: review reads one for every case it opens.
        # Credentials are never cached (a revoked key must fail at once); a company record
        # is descriptive and is copied onto the case anyway.
        self._companies: dict[str, tuple[float, Company]] = {}

    # --- issuing (operator command) -----------------------------------------------------------

    def create_company(self, name: str, eori: str) -> tuple[Company, str]:
        name = name.strip()
        if not name or len(name) > 200:
            raise DirectoryError("name must be 1 to 200 characters")
        eori = validate_eori(eori)
        with session_scope(self.engine) as session:
            if session.exec(select(Company).where(Company.eori == eori)).first():
                raise DirectoryError(f"a company with EORI {eori} exists already")
            company = Company(name=name, eori=eori)
            session.add(company)
            session.flush()
            key, key_hash = new_api_key()
            session.add(
                Credential(
                    kind=CredentialKind.applicant, subject_id=company.id, secret_hash=key_hash
                )
            )
        return company, key

    def create_official(
        self,
        name: str,
        side: str,
        role: str,
        expires_in: timedelta = OFFICIAL_TOKEN_LIFETIME,
    ) -> tuple[Official, str]:
        """A new official and a token for their programs, expiring after `expires_in`."""
        name = name.strip()
        if not name or len(name) > 200:
            raise DirectoryError("name must be 1 to 200 characters")
        try:
            side_v, role_v = Side(side.upper()), Role(role.lower())
        except ValueError as exc:
            raise DirectoryError("side must be EU or CN; role officer or supervisor") from exc
        if expires_in <= timedelta(0):
            raise DirectoryError("a token's lifetime must be positive")
        expires_at = utcnow() + expires_in
        with session_scope(self.engine) as session:
            official = Official(name=name, side=side_v, role=role_v)
            session.add(official)
            session.flush()
            token = self._issue_token(
                session, CredentialKind.official, official.id, side_v, role_v, expires_at
            )
        return official, token

    def issue_official_token(
        self, official_id: str, expires_in: timedelta = OFFICIAL_TOKEN_LIFETIME
    ) -> str:
        """Another token for an official's programs (an invited official has none at first)."""
        if expires_in <= timedelta(0):
            raise DirectoryError("a token's lifetime must be positive")
        with session_scope(self.engine) as session:
            official = session.get(Official, official_id)
            if official is None:
                raise DirectoryError(f"no official with id {official_id}")
            return self._issue_token(
                session,
                CredentialKind.official,
                official.id,
                Side(official.side),
                Role(official.role),
                utcnow() + expires_in,
            )

    def create_operator(self, name: str) -> str:
        with session_scope(self.engine) as session:
            return self._issue_token(session, CredentialKind.operator, f"operator:{name}")

    def _issue_token(
        self,
        session: Session,
        kind: CredentialKind,
        subject_id: str,
        side: Side | None = None,
        role: Role | None = None,
        expires_at: datetime | None = None,
    ) -> str:
        credential_id = str(uuid.uuid4())
        claims = {"cid": credential_id, "kind": kind.value, "sub": subject_id}
        if side is not None and role is not None:
            claims.update(side=side.value, role=role.value)
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        token = f"{TOKEN_PREFIX}{body}.{signature}"
        session.add(
            Credential(
                id=credential_id,
                kind=kind,
                subject_id=subject_id[:36],
                secret_hash=_hash(token),
                expires_at=expires_at,
            )
        )
        return token

    def expiry_of(self, secret: str) -> datetime | None:
        """When a credential expires, from its record (None: until revoked, or unknown)."""
        table = Credential.__table__  # type: ignore[attr-defined]
        query = sa_select(table.c.expires_at).where(table.c.secret_hash == _hash(secret))
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            found = conn.execute(query).scalar()
        return None if found is None else _aware(found)

    def revoke(self, credential_or_subject_id: str) -> int:
        """Revoke a credential by its id, or every credential of a company or official."""
        with session_scope(self.engine) as session:
            found = session.exec(
                select(Credential).where(
                    (Credential.id == credential_or_subject_id)
                    | (Credential.subject_id == credential_or_subject_id)
                )
            ).all()
            if not found:
                raise DirectoryError(f"no credential or holder with id {credential_or_subject_id}")
            now = utcnow()
            for credential in found:
                if credential.revoked_at is None:
                    credential.revoked_at = now
                    session.add(credential)
            return len(found)

    # --- verifying (every request) ------------------------------------------------------------

    def authenticate(self, secret: str) -> Principal:
        if secret.startswith(TOKEN_PREFIX):
            self._check_signature(secret)
        elif not secret.startswith(API_KEY_PREFIX):
            raise InvalidCredential("unrecognised credential")
        # Every request comes through here: one query, outside a transaction, no ORM. Still
        # read from the directory each time, so a revocation takes effect at once.
        secret_hash = _hash(secret)
        if self._lookups is not None:
            # PostgreSQL: on plain autocommit psycopg connections (no ping per checkout, no
            # SQLAlchemy statement machinery: a third of the CPU).
            row = self._lookups.run(lambda conn: _fetch_credential(conn, secret_hash))
        else:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                row = conn.execute(_CREDENTIAL_QUERY, {"secret_hash": secret_hash}).first()
        if row is None or row.revoked_at is not None:
            raise InvalidCredential("unknown or revoked credential")
        if row.expires_at is not None and _aware(row.expires_at) <= utcnow():
            raise InvalidCredential("expired credential")
        kind = CredentialKind(row.kind)
        if kind == CredentialKind.applicant:
            if row.company_id is None:
                raise InvalidCredential("company not found")
            return Principal(kind, row.company_id, row.id, row.company_name)
        if kind == CredentialKind.official:
            if row.official_id is None:
                raise InvalidCredential("official not found")
            return Principal(
                kind,
                row.official_id,
                row.id,
                row.official_name,
                Side(row.official_side),
                Role(row.official_role),
            )
        return Principal(kind, row.subject_id, row.id, "operator")

    def _check_signature(self, token: str) -> None:
        try:
            body, signature = token[len(TOKEN_PREFIX) :].split(".")
            expected = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(signature)):
                raise InvalidCredential("bad token signature")
        except (ValueError, TypeError) as exc:
            raise InvalidCredential("malformed token") from exc

    def official(self, official_id: str) -> Official | None:
        row = self._lookup(Official, official_id)
        return None if row is None else Official(**row)

    def language_of(self, official_id: str) -> str | None:
        """The official's chosen language, None if they chose none (or are unknown)."""
        official = self._lookup(Official, official_id)
        return None if official is None else official["language"]

    def set_language(self, official_id: str, language: str | None) -> bool:
        """Store the official's language; False if there is no such official."""
        table = Official.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as conn:
            changed = conn.execute(
                table.update().where(table.c.id == official_id).values(language=language)
            )
        return changed.rowcount == 1

    def set_digest(self, official_id: str, wanted: bool) -> bool:
        """Opt the official in to (or out of) the daily digest; False if there is no such
        official."""
        table = Official.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as conn:
            changed = conn.execute(
                table.update().where(table.c.id == official_id).values(digest=wanted)
            )
        return changed.rowcount == 1

    def digest_readers(self) -> list[DigestReader]:
        """The officials opted in to the daily digest who have an e-mail address (are people)
        and are not disabled, by side and name."""
        officials = Official.__table__  # type: ignore[attr-defined]
        people = Person.__table__  # type: ignore[attr-defined]
        query = (
            sa_select(
                officials.c.id,
                officials.c.name,
                officials.c.side,
                officials.c.language,
                people.c.email,
            )
            .join(people, people.c.id == officials.c.id)
            .where(officials.c.digest.is_(True), people.c.disabled_at.is_(None))
            .order_by(officials.c.side, officials.c.name, officials.c.id)
        )
        with self.engine.connect() as conn:
            return [DigestReader(*row) for row in conn.execute(query)]

    def can_sign_in(self, subject_id: str) -> bool:
        """Whether the company or official holds a credential that is not revoked or expired,
        or is a person who is not disabled (who signs in with password and code).

        Revoking every credential of an official (for a person: disabling them) is how an
        operator takes them out of the channel; review then no longer makes them a point of
        contact.
        """
        table = Credential.__table__  # type: ignore[attr-defined]
        people = Person.__table__  # type: ignore[attr-defined]
        held = sa_select(table.c.id).where(
            table.c.subject_id == subject_id,
            table.c.kind != SESSION_KIND,
            table.c.revoked_at.is_(None),
            table.c.expires_at.is_(None) | (table.c.expires_at > utcnow()),
        )
        enabled = sa_select(people.c.id).where(
            people.c.id == subject_id, people.c.disabled_at.is_(None)
        )
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return any(conn.execute(q.limit(1)).first() is not None for q in (held, enabled))

    def officials(self, side: str | None = None) -> list[Official]:
        with Session(self.engine) as session:
            query = select(Official)
            if side:
                query = query.where(Official.side == side)
            return list(session.exec(query).all())

    def company(self, company_id: str) -> Company | None:
        """The company, cached for COMPANY_CACHE_SECONDS (credentials never are)."""
        self.load_companies([company_id])
        known = self._companies.get(company_id)
        return None if known is None else known[1]

    def load_companies(self, company_ids: Iterable[str]) -> None:
        """Read the companies not cached (or cached too long ago) in one query.

        Review reads a company for every case it opens; a consumer loads a whole read's.
        """
        now = time.monotonic()
        wanted = {
            c
            for c in company_ids
            if (known := self._companies.get(c)) is None or now - known[0] >= COMPANY_CACHE_SECONDS
        }
        if not wanted:
            return
        table = Company.__table__  # type: ignore[attr-defined]
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            rows = conn.execute(sa_select(table).where(table.c.id.in_(sorted(wanted)))).all()
        for company_id in wanted:
            self._companies.pop(company_id, None)  # gone from the directory: not found
        if len(self._companies) + len(rows) > COMPANY_CACHE_SIZE:
            self._companies.clear()
        for row in rows:
            self._companies[row.id] = (now, Company(**row._mapping))

    def _lookup(self, model: type[SQLModel], key: str) -> dict[str, Any] | None:
        # One query, no ORM session.
        table = model.__table__  # type: ignore[attr-defined]
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            row = conn.execute(sa_select(table).where(table.c.id == key)).first()
        return None if row is None else dict(row._mapping)


def open_directory(settings: CommonSettings | None = None) -> Directory:
    """The credential directory of these settings, migrated: for operator tools and tests."""
    settings = settings or CommonSettings()
    engine = make_engine(settings, DIRECTORY, pool_size=2)
    migrate(engine, MIGRATIONS, settings.schema_for(DIRECTORY))
    return Directory(engine, settings.token_secret)
