"""Everything of personal accounts over one credential directory, put together once."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from shared.accounts.company import CompanyAdmin
from shared.accounts.invitations import Invitations
from shared.accounts.passwords import Passwords
from shared.accounts.people import People
from shared.accounts.sessions import Sessions, SessionSettings
from shared.accounts.signin import SignIn
from shared.accounts.throttle import SignInThrottle
from shared.directory import Directory


@dataclass(frozen=True)
class Accounts:
    passwords: Passwords
    sessions: Sessions
    people: People
    invitations: Invitations
    throttle: SignInThrottle
    sign_in: SignIn
    company: CompanyAdmin


def open_accounts(
    directory: Directory,
    client: redis.Redis,
    settings: SessionSettings | None = None,
    passwords: Passwords | None = None,
) -> Accounts:
    """The account operations on this directory's database and this Redis (connected as
    the service's own Redis user: shared/redis_acl.py grants the throttle's keys)."""
    settings = settings or SessionSettings()
    passwords = passwords or Passwords()
    sessions = Sessions(directory.engine, settings)
    throttle = SignInThrottle(client, settings.schema_prefix)
    people = People(directory.engine, sessions)
    invitations = Invitations(directory.engine, passwords, sessions)
    return Accounts(
        passwords=passwords,
        sessions=sessions,
        people=people,
        invitations=invitations,
        throttle=throttle,
        sign_in=SignIn(directory.engine, passwords, sessions, throttle),
        company=CompanyAdmin(directory.engine, people, invitations),
    )
