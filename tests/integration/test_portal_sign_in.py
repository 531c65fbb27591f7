"""Company staff sign in to the portal at intake's `/` (issue 21): e-mail, password, and a
code when they set up a factor; a server session under the portal's own cookie, which
sign-out and disabling end; signed out, every page sends to sign-in; the API keeps
answering in JSON. Real intake process, real PostgreSQL or SQLite, real Redis, real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.accounts.sessions import COOKIE_NAME as CONSOLE_COOKIE
from shared.accounts.sessions import PORTAL_COOKIE_NAME as COOKIE_NAME
from shared.directory import Directory, open_directory
from tests.integration.conftest import application, new_company
from tests.people import enrol_staff, form_nonce, settings_of, sign_in_form, signed_in
from tests.support import Infra, ServiceProcess, operator


@pytest.fixture(scope="module")
def directory(infra: Infra) -> Iterator[Directory]:
    made = open_directory(settings_of(infra))
    yield made
    made.engine.dispose()


@pytest.fixture(scope="module")
def company(infra: Infra) -> dict[str, Any]:
    return new_company(infra, "Gamma Magnets GmbH")


def _browser(intake: ServiceProcess) -> httpx.Client:
    return httpx.Client(base_url=intake.url, timeout=20)


def test_staff_sign_in_with_password_alone_into_a_session_of_the_portals_own_cookie(
    intake: ServiceProcess, directory: Directory, company: dict[str, Any]
) -> None:
    staff = enrol_staff(directory, company["id"], "Greta Gamma")
    with intake.client(company["api_key"]) as api:
        made = api.post("/v1/applications", json=application())
        assert made.status_code == 201, made.text
    with _browser(intake) as browser:
        assert browser.get("/").headers["location"] == "/sign-in"
        answer = signed_in(browser, staff)
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE_NAME}=ree_ss_") and CONSOLE_COOKIE + "=" not in cookie
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        page = browser.get("/")
        assert page.status_code == 200 and "Greta Gamma" in page.text
        assert "Gamma Magnets GmbH" in page.text
        assert made.json()["reference"] in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'")


def test_a_staff_member_with_a_factor_needs_the_code(
    intake: ServiceProcess, directory: Directory, company: dict[str, Any]
) -> None:
    staff = enrol_staff(directory, company["id"], "Fiona Factor", factor=True)
    with _browser(intake) as browser:
        nonce = form_nonce(browser.get("/sign-in"))
        refused = browser.post("/sign-in", data=sign_in_form(staff, nonce, code=""))
        assert refused.status_code == 403, refused.text[:300]
        assert 'id="code-error"' in refused.text or "alert-error" in refused.text
        assert COOKIE_NAME not in browser.cookies
        assert signed_in(browser, staff).status_code == 303


def test_sign_out_ends_the_session_and_a_copied_cookie_stops_working(
    intake: ServiceProcess, directory: Directory, company: dict[str, Any]
) -> None:
    staff = enrol_staff(directory, company["id"], "Otto Out", role="member")
    with _browser(intake) as browser:
        assert signed_in(browser, staff).status_code == 303
        copied = browser.cookies[COOKIE_NAME]
        without_csrf = browser.post("/sign-out", data={})
        assert (
            without_csrf.status_code == 403 and "text/html" in without_csrf.headers["content-type"]
        )
        out = browser.post("/sign-out", data={"csrf": form_nonce(browser.get("/"))})
        assert out.status_code == 303 and out.headers["location"] == "/sign-in?notice=out"
    with httpx.Client(base_url=intake.url, cookies={COOKIE_NAME: copied}) as thief:
        again = thief.get("/")
        assert again.status_code == 303 and again.headers["location"] == "/sign-in"


def test_a_disabled_persons_session_ends(
    infra: Infra, intake: ServiceProcess, directory: Directory, company: dict[str, Any]
) -> None:
    staff = enrol_staff(directory, company["id"], "Dora Disabled", role="member")
    with _browser(intake) as browser:
        assert signed_in(browser, staff).status_code == 303
        assert browser.get("/").status_code == 200
        operator(infra, "person", "disable", staff["id"])
        gone = browser.get("/")
        assert gone.status_code == 303 and gone.headers["location"] == "/sign-in"


def test_an_official_cannot_sign_in_to_the_portal_and_the_api_stays_json(
    intake: ServiceProcess, officials: dict[str, dict[str, Any]]
) -> None:
    with _browser(intake) as browser:
        nonce = form_nonce(browser.get("/sign-in"))
        refused = browser.post("/sign-in", data=sign_in_form(officials["eu_officer"], nonce))
        assert refused.status_code == 403 and COOKIE_NAME not in browser.cookies
        api = browser.get("/v1/applications")
        assert api.status_code == 401 and api.headers["content-type"] == "application/problem+json"
        unknown = browser.get("/no-such-page")
        assert unknown.status_code == 404 and "text/html" in unknown.headers["content-type"]
