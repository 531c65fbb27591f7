"""Officials and company staff of the tests as people: invited, enrolled with a password and
a TOTP factor (staff: if they choose one), officials given a token for their programs, and
signed in to the console or the portal through its form.

Each TOTP code is taken once (shared/accounts/factor.py): the tests' authenticator hands out
the next code nobody has used (a step either side of now is accepted), and waits for the
clock's next step only when all three are used.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from typing import Any

import httpx
import pyotp
from argon2 import PasswordHasher

from shared.accounts.invitations import Answer, Invitations
from shared.accounts.passwords import Passwords
from shared.accounts.sessions import COOKIE_NAME, Sessions
from shared.accounts.sessions import PORTAL_COOKIE_NAME as PORTAL_COOKIE
from shared.accounts.totp import new_secret
from shared.config import CommonSettings
from shared.directory import Directory, open_directory
from tests.support import Infra, wait_until

PASSWORD = "correct horse battery staple"
STEP_SECONDS = 30
MARGIN_SECONDS = 8


class Authenticator:
    """The authenticator app of every test person: the next code not used yet, of the
    previous step (while it is still well inside the window), the current or the next."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    def code(self, secret: str) -> str:
        with self._lock:
            step = self._next_step(self._last.get(secret, -1))
            self._last[secret] = step
            return pyotp.TOTP(secret).generate_otp(step)

    @staticmethod
    def _next_step(last: int) -> int:
        now = time.time()
        current = int(now) // STEP_SECONDS
        # The previous step's code is taken only with MARGIN_SECONDS to go before it leaves
        # the window: the check it is for comes well within that.
        earliest = current - 1 if now % STEP_SECONDS < STEP_SECONDS - MARGIN_SECONDS else current
        step = max(earliest, last + 1)
        if step > current + 1:
            wait_until(
                lambda: _step_now() + 1 >= step,
                timeout=STEP_SECONDS + 5,
                interval=0.2,
                what="the next TOTP time-step",
            )
        return step


def _step_now() -> int:
    return int(time.time()) // STEP_SECONDS


AUTHENTICATOR = Authenticator()


def settings_of(infra: Infra) -> CommonSettings:
    return CommonSettings(
        DATABASE_URL=infra.database_url,
        REE_DATA_DIR=infra.data_dir,
        REE_SCHEMA_PREFIX=infra.prefix,
    )


def enrol_official(directory: Directory, name: str, side: str, role: str) -> dict[str, Any]:
    """An official who accepted an operator's invitation, with a token for programs."""
    engine = directory.engine
    # argon2id still, at small costs: the services verify any parameters the hash names.
    cheap = Passwords(PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1))
    invitations = Invitations(engine, cheap, Sessions(engine))
    email = f"{side}.{role}.{uuid.uuid4().hex[:8]}@example.eu".lower()
    link = invitations.invite_official(email, name, side, role, by="operator:tests")
    secret = new_secret()
    person = invitations.accept(link.token, Answer(PASSWORD, secret, AUTHENTICATOR.code(secret)))
    return {
        "id": person.id,
        "name": name,
        "side": side,
        "role": role,
        "email": email,
        "password": PASSWORD,
        "totp_secret": secret,
        "token": directory.issue_official_token(person.id),
    }


def enrol_staff(
    directory: Directory,
    company_id: str,
    name: str = "Sam Staff",
    role: str = "admin",
    factor: bool = False,
    by: str = "operator:tests",
) -> dict[str, Any]:
    """A company's staff member who accepted an invitation (an operator's, or an admin's
    when `by` is the admin's person id): a password, and a TOTP factor if `factor`."""
    engine = directory.engine
    cheap = Passwords(PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1))
    invitations = Invitations(engine, cheap, Sessions(engine))
    email = f"staff.{role}.{uuid.uuid4().hex[:8]}@example.com"
    link = invitations.invite_staff(company_id, email, name, role, by=by)
    secret = new_secret() if factor else None
    code = AUTHENTICATOR.code(secret) if secret else ""
    person = invitations.accept(link.token, Answer(PASSWORD, secret, code))
    return {
        "id": person.id,
        "name": name,
        "role": role,
        "company_id": company_id,
        "email": email,
        "password": PASSWORD,
        "totp_secret": secret,
    }


def enrol_officials(infra: Infra, names: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """An officer and a supervisor per side, keyed eu_officer, eu_supervisor, cn_officer, ..."""
    directory = open_directory(settings_of(infra))
    try:
        made = {}
        for side in ("EU", "CN"):
            for role in ("officer", "supervisor"):
                key = f"{side.lower()}_{role}"
                name = (names or {}).get(key, f"{side} {role}")
                made[key] = enrol_official(directory, name, side, role)
        return made
    finally:
        directory.engine.dispose()


def form_nonce(page: httpx.Response) -> str:
    """The `csrf` field of a page's form (the nonce before sign-in, the session's after)."""
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def sign_in_form(person: dict[str, Any], nonce: str, code: str | None = None) -> dict[str, str]:
    """The sign-in form of a person (a code if they have a factor, unless `code` is given)."""
    if code is None:
        secret = person.get("totp_secret")
        code = AUTHENTICATOR.code(secret) if secret else ""
    return {
        "csrf": nonce,
        "email": person["email"],
        "password": person["password"],
        "code": code,
    }


def signed_in(client: httpx.Client, official: dict[str, Any]) -> httpx.Response:
    """Sign in through the console's form, as a person does; the answer to the post."""
    nonce = form_nonce(client.get("/sign-in"))
    return client.post("/sign-in", data=sign_in_form(official, nonce))


# A session per official, kept as a browser keeps its cookie between pages. Sessions live in
# the deployment's credential directory, so one holds for every review process of it (each
# test module starts its own): signing in again for each would use up the person's codes,
# three a 90 s window, and wait for the next one.
_SESSIONS: dict[str, str] = {}


def console(url: str, official: dict[str, Any], fresh: bool = False) -> httpx.Client:
    """A browser's session of the console at `url` (a client not opened yet): signed in
    through the form the first time (or when `fresh`), its session cookie kept for the next."""
    return _session_client(url, official, COOKIE_NAME, fresh)


def portal(url: str, staff: dict[str, Any], fresh: bool = False) -> httpx.Client:
    """A browser's session of the companies' portal at `url` (intake's), as `console`."""
    return _session_client(url, staff, PORTAL_COOKIE, fresh)


def _session_client(url: str, person: dict[str, Any], cookie: str, fresh: bool) -> httpx.Client:
    key = person["email"]  # unique per enrolled person, across deployments
    kept = None if fresh else _SESSIONS.get(key)
    if kept is None or not _still_in(url, kept, cookie):
        with httpx.Client(base_url=url, timeout=20) as browser:
            answer = signed_in(browser, person)
            assert answer.status_code == 303, answer.text[:500]
            kept = _SESSIONS[key] = str(browser.cookies.get(cookie))
    return httpx.Client(base_url=url, timeout=20, cookies={cookie: kept})


def _still_in(url: str, session: str, cookie: str = COOKIE_NAME) -> bool:
    page = httpx.get(url + "/", cookies={cookie: session}, timeout=20)
    return page.status_code == 200
