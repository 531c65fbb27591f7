"""Company staff sign in to the portal at intake's `/` (issue 21): e-mail, password, and a
code when they set up a factor; a server session under the portal's own cookie, which
sign-out and disabling end; signed out, every page sends to sign-in; the API keeps
answering in JSON. Real intake process, real PostgreSQL or SQLite, real Redis, real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from shared.accounts.sessions import COOKIE_NAME as CONSOLE_COOKIE
from shared.accounts.sessions import PORTAL_COOKIE_NAME as COOKIE_NAME
from shared.directory import Directory
from tests.integration.conftest import application
from tests.people import enrol_staff, form_nonce, sign_in_form, signed_in
from tests.portal_fixtures import company_fixture, directory_fixture  # noqa: F401
from tests.support import Infra, ServiceProcess, TcpProxy, operator, started

company = company_fixture("Gamma Magnets GmbH")
# The main navigation of base.html: on a signed-in person's pages only.
NAV = 'class="mainnav"'


def _browser(intake: ServiceProcess) -> httpx.Client:
    return httpx.Client(base_url=intake.url, timeout=20)


@contextmanager
def _signed_in(intake: ServiceProcess, staff: dict[str, Any]) -> Iterator[httpx.Client]:
    """A browser in which `staff` signed in through the form (its answer a 303)."""
    with _browser(intake) as browser:
        assert signed_in(browser, staff).status_code == 303
        yield browser


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
    with _signed_in(intake, staff) as browser:
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
    with _signed_in(intake, staff) as browser:
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
        assert NAV not in unknown.text and 'href="/apply"' not in unknown.text


def test_an_error_page_has_the_navigation_of_a_signed_in_person_and_none_without(
    intake: ServiceProcess, directory: Directory, company: dict[str, Any]
) -> None:
    staff = enrol_staff(directory, company["id"], "Nora Nav", role="member")
    with _signed_in(intake, staff) as browser:
        unknown = browser.get("/no-such-page")
        assert unknown.status_code == 404 and NAV in unknown.text
        assert 'href="/apply"' in unknown.text and "Nora Nav" in unknown.text
        assert 'href="/keys"' not in unknown.text, "a member's navigation, not an admin's"
        assert form_nonce(unknown) == form_nonce(browser.get("/")), "the sign-out form's token"
    made_up = {COOKIE_NAME: "ree_ss_made-up"}
    with httpx.Client(base_url=intake.url, cookies=made_up, timeout=20) as stranger:
        page = stranger.get("/no-such-page")
        assert page.status_code == 404 and NAV not in page.text, page.text[:300]


def test_an_error_page_is_shown_without_navigation_when_the_session_cannot_be_read(
    infra: Infra, directory: Directory, company: dict[str, Any]
) -> None:
    database = infra.database_url or ""
    if not database.startswith("postgresql"):
        pytest.skip("needs a database server to take away (DATABASE_URL)")
    server = urlsplit(database)
    proxy = TcpProxy(server.hostname or "127.0.0.1", server.port or 5432)
    user, _, _ = server.netloc.rpartition("@")
    via_proxy = server._replace(netloc=(f"{user}@" if user else "") + f"127.0.0.1:{proxy.port}")
    staff = enrol_staff(directory, company["id"], "Dirk Down", role="member")
    try:
        with started("intake", infra.env(DATABASE_URL=urlunsplit(via_proxy))) as intake:
            with _signed_in(intake, staff) as browser:
                proxy.cut()
                page = browser.get("/no-such-page")
                assert page.status_code == 404 and NAV not in page.text, page.text[:300]
            proxy.restore()
    finally:
        proxy.close()
