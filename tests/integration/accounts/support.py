"""Helpers of the accounts tests: a cheap (still argon2id) hasher that counts, settings of
the test deployment, and people made through real invitations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis
from argon2 import PasswordHasher

from shared.accounts.accounts import Accounts, open_accounts
from shared.accounts.invitations import Answer
from shared.accounts.passwords import Passwords
from shared.accounts.sessions import SessionSettings
from shared.accounts.totp import current_code, new_secret
from shared.directory import Directory
from tests.people import AUTHENTICATOR
from tests.support import Infra

PASSWORD = "correct horse battery staple"
# The next unused code of a secret (each is taken once: shared/accounts/factor.py).
next_code = AUTHENTICATOR.code


class CountingHasher(PasswordHasher):
    """argon2id with small costs (tests run many), counting its verifications."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8 * 1024, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        return super().verify(hash, password)


def settings_of(infra: Infra, **extra: object) -> SessionSettings:
    return SessionSettings(
        DATABASE_URL=infra.database_url,
        REE_DATA_DIR=infra.data_dir,
        REE_SCHEMA_PREFIX=infra.prefix,
        **extra,  # type: ignore[arg-type]
    )


@dataclass
class Kit:
    accounts: Accounts
    hasher: CountingHasher
    directory: Directory


def kit(directory: Directory, client: redis.Redis, infra: Infra, **settings: object) -> Kit:
    hasher = CountingHasher()
    accounts = open_accounts(
        directory, client, settings_of(infra, **settings), passwords=Passwords(hasher)
    )
    return Kit(accounts, hasher, directory)


def unique_email(who: str = "eva") -> str:
    return f"{who}.{uuid.uuid4().hex[:8]}@example.eu"


def official(kit: Kit, side: str = "EU", role: str = "officer") -> tuple[str, str, str]:
    """An official who accepted an invitation: (email, person id, TOTP secret)."""
    email = unique_email()
    link = kit.accounts.invitations.invite_official(email, "Eva Europa", side, role)
    secret = new_secret()
    person = kit.accounts.invitations.accept(
        link.token, Answer(PASSWORD, secret, next_code(secret))
    )
    return email, person.id, secret


def wrong_code(secret: str) -> str:
    """A code that is not the right one now (nor one step either side, but by a fluke)."""
    return str((int(current_code(secret)) + 500_000) % 1_000_000).zfill(6)


def address() -> str:
    """A client address of its own, so one test's delays never reach another's."""
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
