"""The console signs in people (issue 20): e-mail, password and code; a session on the
server that sign-out, disabling and revoking end; invitation and password-reset pages whose
refusals are shown next to the field and leave nothing behind. Real review process, real
PostgreSQL or SQLite, real Redis, real HTTP."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from shared.accounts.invitations import Invitations
from shared.accounts.models import Invitation, InvitationPurpose, Person
from shared.accounts.passwords import Passwords
from shared.accounts.sessions import COOKIE_NAME, Sessions
from shared.accounts.throttle import ACCOUNT
from shared.directory import Directory, open_directory
from tests.people import (
    AUTHENTICATOR,
    PASSWORD,
    enrol_official,
    form_nonce,
    settings_of,
    sign_in_form,
    signed_in,
)
from tests.support import Infra, ServiceProcess, operator

NEW_PASSWORD = "a brand new passphrase"
NONCE = re.compile(r'name="csrf" value="[^"]+"')


@pytest.fixture(scope="module")
def directory(infra: Infra) -> Iterator[Directory]:
    made = open_directory(settings_of(infra))
    yield made
    made.engine.dispose()


@pytest.fixture
def person(directory: Directory) -> dict[str, Any]:
    """An official of their own for each test (a session or a delay never reaches another)."""
    return enrol_official(directory, "Eva Europa", "EU", "officer")


def _browser(review: ServiceProcess) -> httpx.Client:
    return httpx.Client(base_url=review.url, timeout=20)


def test_an_official_signs_in_with_e_mail_password_and_code_into_a_server_session(
    review: ServiceProcess, person: dict[str, Any]
) -> None:
    with _browser(review) as browser:
        answer = signed_in(browser, person)
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE_NAME}=ree_ss_"), "an opaque id, not the token"
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        queue = browser.get("/")
        assert queue.status_code == 200 and "Eva Europa" in queue.text


def test_a_copied_cookie_stops_working_once_its_official_signs_out(
    review: ServiceProcess, person: dict[str, Any]
) -> None:
    with _browser(review) as browser:
        assert signed_in(browser, person).status_code == 303
        copied = browser.cookies[COOKIE_NAME]
        out = browser.post("/sign-out", data={"csrf": form_nonce(browser.get("/"))})
        assert out.status_code == 303 and out.headers["location"] == "/sign-in?notice=out"
        assert f'{COOKIE_NAME}=""' in out.headers["set-cookie"]
    with httpx.Client(base_url=review.url, cookies={COOKIE_NAME: copied}) as thief:
        again = thief.get("/")
        assert again.status_code == 303 and again.headers["location"] == "/sign-in"


def test_the_csrf_token_is_that_of_the_server_session(
    review: ServiceProcess, person: dict[str, Any], officials: dict[str, Any]
) -> None:
    with _browser(review) as other:
        assert signed_in(other, officials["eu_supervisor"]).status_code == 303
        foreign = form_nonce(other.get("/"))
    with _browser(review) as browser:
        assert signed_in(browser, person).status_code == 303
        mine = form_nonce(browser.get("/"))
        assert mine != foreign
        refused = browser.post("/sign-out", data={"csrf": foreign})
        assert refused.status_code == 403
        assert browser.get("/").status_code == 200, "the session goes on"


@pytest.mark.parametrize("how", ["person disable", "credential revoke"])
def test_disabling_or_revoking_the_official_ends_the_console_session(
    infra: Infra, review: ServiceProcess, person: dict[str, Any], how: str
) -> None:
    with _browser(review) as browser:
        assert signed_in(browser, person).status_code == 303
        assert browser.get("/").status_code == 200
        operator(infra, *how.split(), person["id"])
        ended = browser.get("/")
        assert ended.status_code == 303 and ended.headers["location"] == "/sign-in"
    # A token of the official's is refused by the API as well after a revocation.
    if how == "credential revoke":
        with review.client(person["token"]) as api:
            assert api.get("/v1/cases").status_code == 401


def test_wrong_sign_ins_say_the_same_and_then_wait_with_retry_after(
    review: ServiceProcess, person: dict[str, Any]
) -> None:
    with _browser(review) as browser:
        nonce = form_nonce(browser.get("/sign-in"))
        for attempt in range(ACCOUNT.free_failures + 1):
            typed = {**sign_in_form(person, nonce, code="000000"), "password": f"wrong {attempt}"}
            refused = browser.post("/sign-in", data=typed)
            assert refused.status_code == 403, refused.text[:300]
            assert "password or code is wrong" in refused.text
            assert person["email"] in refused.text, "the e-mail typed stays in the form"
            nonce = form_nonce(refused)
        delayed = browser.post("/sign-in", data=sign_in_form(person, nonce))
        assert delayed.status_code == 429
        assert int(delayed.headers["retry-after"]) >= 1
        assert "too many failed sign-ins; try again in" in delayed.text
        assert COOKIE_NAME not in browser.cookies


def test_an_officials_token_no_longer_opens_the_console(
    review: ServiceProcess, officials: dict[str, Any]
) -> None:
    token = officials["eu_officer"]["token"]
    with _browser(review) as browser:
        nonce = form_nonce(browser.get("/sign-in"))
        answer = browser.post(
            "/sign-in", data={"csrf": nonce, "email": "", "password": token, "code": ""}
        )
        assert answer.status_code == 403 and COOKIE_NAME not in browser.cookies
    with httpx.Client(base_url=review.url, cookies={COOKIE_NAME: token}) as pasted:
        assert pasted.get("/").headers["location"] == "/sign-in"


# --- invitations --------------------------------------------------------------------------------


def _invited(infra: Infra) -> tuple[str, str]:
    email = f"invited.{uuid.uuid4().hex[:8]}@example.eu"
    shown = operator(infra, "official", "invite", "--email", email, "--side", "CN", "--role",
                     "supervisor")  # fmt: skip
    return email, shown["link"].partition("token=")[2]


def _secret_of(page: httpx.Response) -> str:
    found = re.search(r'name="totp_secret" value="([A-Z2-7]+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def _people_with(directory: Directory, email: str) -> int:
    with Session(directory.engine) as session:
        return len(session.exec(select(Person).where(Person.email == email)).all())


def test_an_invitation_page_sets_up_the_factor_and_refuses_next_to_the_field(
    infra: Infra, review: ServiceProcess, directory: Directory
) -> None:
    email, token = _invited(infra)
    with _browser(review) as browser:
        page = browser.get("/invitation", params={"token": token})
        assert page.status_code == 200
        assert "<svg" in page.text and email in page.text
        for field in ("password", "repeat", "code"):
            assert f'<label for="{field}">' in page.text
        secret = _secret_of(page)
        form = {"csrf": form_nonce(page), "token": token, "totp_secret": secret}
        tries = [
            ({"password": "too short", "repeat": "too short", "code": "000000"}, "password"),
            ({"password": PASSWORD, "repeat": PASSWORD + "x", "code": "000000"}, "repeat"),
            ({"password": PASSWORD, "repeat": PASSWORD, "code": "000000"}, "code"),
        ]
        for typed, field in tries:
            refused = browser.post("/invitation", data={**form, **typed})
            assert refused.status_code == 422, refused.text[:300]
            assert f'id="{field}-error"' in refused.text, field
            assert _secret_of(refused) == secret, "the factor the app has set up stays"
            assert _people_with(directory, email) == 0, "nothing half-created"
            form["csrf"] = form_nonce(refused)
        code = AUTHENTICATOR.code(secret)
        good = {**form, "password": PASSWORD, "repeat": PASSWORD, "code": code}
        accepted = browser.post("/invitation", data=good)
        assert accepted.status_code == 303
        assert accepted.headers["location"] == "/sign-in?notice=welcome"
        assert _people_with(directory, email) == 1
        again = browser.post("/invitation", data={**good, "csrf": form_nonce(page)})
        assert again.status_code in (403, 409)
        used = browser.get("/invitation", params={"token": token})
        assert used.status_code == 409 and "used already" in used.text
        assert 'name="password"' not in used.text
    person = {"email": email, "password": PASSWORD, "totp_secret": secret}
    with _browser(review) as browser:
        assert signed_in(browser, person).status_code == 303


# --- password reset -----------------------------------------------------------------------------


def _reset_link(directory: Directory, email: str) -> str:
    invitations = Invitations(directory.engine, Passwords(), Sessions(directory.engine))
    link = invitations.request_reset(email)
    assert link is not None
    return link.token


def test_a_reset_link_sets_a_new_password_with_the_code_and_ends_every_session(
    review: ServiceProcess, directory: Directory, person: dict[str, Any]
) -> None:
    with _browser(review) as before:
        assert signed_in(before, person).status_code == 303
        token = _reset_link(directory, person["email"])
        with _browser(review) as browser:
            page = browser.get("/reset", params={"token": token})
            form = {"csrf": form_nonce(page), "token": token, "password": NEW_PASSWORD}
            form["repeat"] = NEW_PASSWORD
            wrong = browser.post("/reset", data={**form, "code": "000000"})
            assert wrong.status_code == 422 and 'id="code-error"' in wrong.text
            form["csrf"] = form_nonce(wrong)
            code = AUTHENTICATOR.code(person["totp_secret"])
            done = browser.post("/reset", data={**form, "code": code})
            assert done.status_code == 303, done.text[:300]
            assert done.headers["location"] == "/sign-in?notice=reset"
        assert before.get("/").status_code == 303, "the session before the reset ended"
    with _browser(review) as browser:
        old = sign_in_form(person, form_nonce(browser.get("/sign-in")), code="000000")
        assert browser.post("/sign-in", data=old).status_code == 403, "the old password is gone"
        assert signed_in(browser, {**person, "password": NEW_PASSWORD}).status_code == 303


def test_forgot_password_answers_the_same_for_anyone_and_makes_a_link_only_for_a_person(
    review: ServiceProcess, directory: Directory, person: dict[str, Any]
) -> None:
    answers = []
    for email in (person["email"], "nobody." + person["email"]):
        with _browser(review) as browser:
            page = browser.get("/forgot-password")
            sent = browser.post("/forgot-password", data={"csrf": form_nonce(page), "email": email})
            assert sent.status_code == 200
            answers.append(NONCE.sub("", sent.text.replace(email, "EMAIL")))
    assert answers[0] == answers[1]
    with Session(directory.engine) as session:
        links = session.exec(
            select(Invitation).where(Invitation.purpose == InvitationPurpose.reset)
        ).all()
    assert [i.email for i in links if i.email.endswith(person["email"])] == [person["email"]]
