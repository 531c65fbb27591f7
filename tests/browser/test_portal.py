"""The companies' portal in a real browser (issue 21): a new staff member accepts the
invitation (no second factor: it is offered, not required), signs in as a person does, and
walks list → application → upload → answer → withdraw. On every page axe-core runs and
finds no serious or critical violation; screenshots go to test-artifacts/ (docs/portal.md
shows some)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from shared.accounts.invitations import Invitations
from shared.accounts.passwords import Passwords
from shared.accounts.sessions import Sessions
from shared.directory import open_directory
from tests.browser.axe import AXE, accessible
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_console import opened, submit
from tests.people import PASSWORD, enrol_official, settings_of
from tests.support import Infra, ServiceProcess, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(400)]

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def invitation(infra: Infra, people: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """An operator's invitation of the company's first admin: (e-mail, token)."""
    directory = open_directory(settings_of(infra))
    try:
        invitations = Invitations(directory.engine, Passwords(), Sessions(directory.engine))
        email = "anna.admin@browser-magnets.example"
        link = invitations.invite_staff(people["company"]["id"], email, "Anna Admin", "admin")
        return email, link.token
    finally:
        directory.engine.dispose()


def test_a_new_staff_member_walks_the_portal_with_a_keyboard_and_axe_finds_nothing_serious(
    browser: Any,
    infra: Infra,
    services: dict[str, ServiceProcess],
    people: dict[str, dict[str, Any]],
    invitation: tuple[str, str],
) -> None:
    if not AXE.exists():
        pytest.skip("axe-core is not installed: `make specs` installs it into .cache/npm")
    intake, review = services["intake"], services["review"]
    email, token = invitation
    application = submit(intake, people["company"]["api_key"])
    # bypass_csp: axe is added as an inline script, which the pages' CSP rightly refuses.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()

    # The invitation: a password, the factor left aside (the code field left empty).
    page.goto(f"{intake.url}/invitation?token={token}")
    accessible(page, "invitation")
    page.fill("#password", PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.click("main form[action='/invitation'] button[type=submit]")
    page.wait_for_url(re.compile(r"/sign-in\?notice=welcome$"))
    accessible(page, "sign-in")

    # Sign in as a person does: the keyboard from field to field.
    page.fill("#email", email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{intake.url}/")
    assert page.locator("text=Anna Admin").count() == 1
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    accessible(page, "applications")

    # The application's page, then an upload refused (not a PDF), then one accepted.
    page.click(f"a[href='/applications/{application['id']}']")
    page.wait_for_load_state()
    assert application["reference"] in page.inner_text("h1")
    accessible(page, "application")
    fake = ARTIFACTS / "not-a-pdf.pdf"
    fake.write_bytes(b"\x00\x01 binary, not a PDF at all")
    page.set_input_files("#file", str(fake))
    page.click("main form[enctype] button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#file-error").count() == 1, page.inner_text("main")[:800]
    assert "file-error" in (page.get_attribute("#file", "aria-describedby") or "")
    accessible(page, "upload-refused")
    statement = Path(ARTIFACTS / "end-user-statement.pdf")
    statement.write_bytes(PDF)
    page.set_input_files("#file", str(statement))
    page.select_option("#kind", "end_user_statement")
    page.click("main form[enctype] button[type=submit]")
    page.wait_for_url(re.compile(r"notice=uploaded"))
    assert page.locator("text=end-user-statement.pdf").count() >= 1

    # An official asks for information; the company answers with text and the document.
    officer = _eu_officer(infra)
    case = opened(review, officer["token"], application["reference"])
    with review.client(officer["token"]) as c:
        version = c.get(f"/v1/cases/{case['id']}").json()["version"]
        asked = c.post(
            f"/v1/cases/{case['id']}/actions",
            json={"action": "request_information", "question": "Who is the end user?"},
            headers={"If-Match": str(version)},
        )
        assert asked.status_code == 200, asked.text

    def request_shown() -> bool:
        page.reload()
        return page.locator("textarea[name=answer]").count() == 1

    wait_until(request_shown, timeout=30, what="the request on the application's page")
    accessible(page, "information-requested")
    page.fill("textarea[name=answer]", "The end user is our plant in Gothenburg.")
    page.check("input[name=document_ids]")
    page.click("main form[action$='/answer'] button[type=submit]")
    page.wait_for_url(re.compile(r"notice=answered"))
    accessible(page, "answered")

    # Withdraw: a confirmation step first; unconfirmed, the message is next to the box.
    page.click(f"a[href='/applications/{application['id']}/withdraw']")
    page.wait_for_load_state()
    accessible(page, "withdraw")
    page.fill("#reason", "The order was cancelled.")
    page.click("button.btn-danger")
    page.wait_for_load_state()
    assert page.locator("#confirm-error").count() == 1
    assert page.input_value("#reason") == "The order was cancelled."
    page.check("#confirm")
    page.click("button.btn-danger")
    page.wait_for_url(re.compile(r"notice=withdrawn"))
    accessible(page, "withdrawn")
    with intake.client(people["company"]["api_key"]) as c:
        assert c.get(f"/v1/applications/{application['id']}").json()["status"] == "withdrawn"

    # The same pages in Chinese.
    page.goto(f"{intake.url}/?lang=zh-Hans")
    assert page.get_attribute("html", "lang") == "zh-Hans"
    assert page.locator("h1").inner_text() == "您的申请"
    accessible(page, "applications-zh")
    page.context.close()


def _eu_officer(infra: Infra) -> dict[str, Any]:
    directory = open_directory(settings_of(infra))
    try:
        return enrol_official(directory, "Eva Europa", "EU", "officer")
    finally:
        directory.engine.dispose()
