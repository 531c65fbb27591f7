"""Who may use the pages of a company's admin (`/keys`, `/colleagues`): every route as every
kind of caller, over real HTTP against intake, compared with one table.

Callers: nobody signed in, a program with the company's API key (the portal takes no bearer
credential: sign-in), a member of company A, an admin of A, an admin of B. The objects are
A's: a key, a colleague. A success changes something, so each gets a fresh object.

tests/security/matrix.py has these routes too, for its callers (the staff of A and B are
admins there); this table adds a member's answers (403) and an API key's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shared.accounts.company import OPERATOR, CompanyAdmin
from shared.accounts.invitations import Invitations
from shared.accounts.passwords import Passwords
from shared.accounts.people import People
from shared.accounts.sessions import PORTAL_COOKIE_NAME, Sessions
from shared.directory import Directory, open_directory
from tests.integration.conftest import new_company
from tests.people import enrol_staff, portal, settings_of
from tests.support import Infra, ServiceProcess, running

CALLERS = ("none", "api_key", "member_a", "admin_a", "admin_b")
SIGN_IN = 303  # to /sign-in


def admin_page(ok: int, other_company: int) -> dict[str, int]:
    return {
        "none": SIGN_IN,
        "api_key": SIGN_IN,
        "member_a": 403,
        "admin_a": ok,
        "admin_b": other_company,
    }


@dataclass
class World:
    intake: ServiceProcess
    directory: Directory
    company_a: dict[str, Any]
    people: dict[str, dict[str, Any]]

    def key_of_a(self) -> str:
        with portal(self.intake.url, self.people["admin_a"]) as browser:
            page = browser.get("/keys")
            csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
            name = f"key {uuid.uuid4().hex[:8]}"
            assert browser.post("/keys", data={"csrf": csrf, "name": name}).status_code == 201
        keys = _admin(self).keys(OPERATOR, self.company_a["id"])
        return next(k.id for k in keys if k.name == name)

    def colleague_of_a(self) -> str:
        made = enrol_staff(self.directory, self.company_a["id"], "Colin", role="member")
        return str(made["id"])


def _admin(world: World) -> CompanyAdmin:
    engine = world.directory.engine
    sessions = Sessions(engine)
    return CompanyAdmin(
        engine, People(engine, sessions), Invitations(engine, Passwords(), sessions)
    )


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # with {key} or {colleague} for A's object
    expect: dict[str, int]
    data: Callable[[], dict[str, str]] | None = None

    def url(self, world: World, fresh: bool) -> str:
        if "{key}" in self.path:
            return self.path.replace("{key}", world.key_of_a() if fresh else _KEPT["key"])
        if "{colleague}" in self.path:
            found = world.colleague_of_a() if fresh else _KEPT["colleague"]
            return self.path.replace("{colleague}", found)
        return self.path


_KEPT: dict[str, str] = {}

ROUTES = (
    Route("GET", "/keys", admin_page(200, 200)),
    Route("POST", "/keys", admin_page(201, 201), lambda: {"name": f"k {uuid.uuid4().hex[:8]}"}),
    Route("GET", "/keys/{key}/revoke", admin_page(200, 404)),
    Route("POST", "/keys/{key}/revoke", admin_page(303, 404), dict),
    Route("GET", "/colleagues", admin_page(200, 200)),
    Route(
        "POST",
        "/colleagues",
        admin_page(201, 201),
        lambda: {"email": f"new.{uuid.uuid4().hex[:8]}@example.com", "role": "member"},
    ),
    Route("POST", "/colleagues/{colleague}/role", admin_page(303, 404), lambda: {"role": "admin"}),
    Route("GET", "/colleagues/{colleague}/disable", admin_page(200, 404)),
    Route("POST", "/colleagues/{colleague}/disable", admin_page(303, 404), dict),
    Route("GET", "/colleagues/{colleague}/enable", admin_page(200, 404)),
)


@pytest.fixture(scope="module")
def intake(infra: Infra) -> Iterator[ServiceProcess]:
    yield from running("intake", infra)


@pytest.fixture(scope="module")
def admin_world(infra: Infra, intake: ServiceProcess) -> Iterator[World]:
    directory = open_directory(settings_of(infra))
    company_a = new_company(infra, "Admin Matrix A AG")
    company_b = new_company(infra, "Admin Matrix B AG")
    people = {
        "member_a": enrol_staff(directory, company_a["id"], "Mia Member", role="member"),
        "admin_a": enrol_staff(directory, company_a["id"], "Arne Admin"),
        "admin_b": enrol_staff(directory, company_b["id"], "Bert Admin"),
    }
    made = World(intake, directory, company_a, people)
    _KEPT["key"] = made.key_of_a()
    _KEPT["colleague"] = made.colleague_of_a()
    yield made
    directory.engine.dispose()


def _call(world: World, route: Route, caller: str) -> httpx.Response:
    fresh = route.expect[caller] in (201, 303) and caller.startswith("admin")
    url = route.url(world, fresh)
    data = None if route.data is None else route.data()
    if caller in world.people:
        browser = portal(world.intake.url, world.people[caller])
    else:
        browser = httpx.Client(base_url=world.intake.url, timeout=20)
        if caller == "api_key":
            browser.headers["Authorization"] = f"Bearer {world.company_a['api_key']}"
    with browser:
        if data is not None:
            signed_in = browser.cookies.get(PORTAL_COOKIE_NAME) is not None
            data = {**data, "csrf": _csrf(browser) if signed_in else "none"}
        return browser.request(route.method, url, data=data)


def _csrf(browser: httpx.Client) -> str:
    page = browser.get("/")
    return page.text.split('name="csrf" value="')[1].split('"')[0]


def test_every_admin_page_answers_every_caller_as_the_table_says(admin_world: World) -> None:
    world = admin_world
    failures = []
    for route in ROUTES:
        for caller in CALLERS:
            answer = _call(world, route, caller)
            expected = route.expect[caller]
            if answer.status_code != expected:
                failures.append(
                    f"{route.method} {route.path} as {caller}: expected {expected}, "
                    f"got {answer.status_code} {answer.text[:120]}"
                )
            elif caller in ("none", "api_key") and answer.headers.get("location") != "/sign-in":
                failures.append(f"{route.method} {route.path} as {caller}: not to sign-in")
    assert not failures, "\n".join(failures)
