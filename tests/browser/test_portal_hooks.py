"""The portal's webhooks and e-mail pages in a real browser (issue 21): an admin adds an
endpoint with the keyboard, sees its secret once, sends a test and reads the delivery log,
then chooses their e-mails; intake and notify are real processes. On every page axe-core
finds no serious or critical violation; screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from shared.directory import open_directory
from tests.browser.axe import AXE, accessible
from tests.integration.notify_support import (
    Receiver,
    new_company,
    notify_env,
    running_receiver,
    wait_for_log,
)
from tests.people import PASSWORD, enrol_staff, settings_of
from tests.support import Infra, ServiceProcess, started

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(400)]


@pytest.fixture(scope="module")
def hooks_services(infra: Infra) -> Iterator[dict[str, ServiceProcess]]:
    with started("notify", notify_env(infra)) as notify:
        env = infra.env(REE_NOTIFY_URL=notify.url)
        with started("intake", env) as intake:
            yield {"intake": intake, "notify": notify}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


def test_an_admin_manages_webhooks_and_emails_with_a_keyboard_and_axe_finds_nothing_serious(
    browser: Any, infra: Infra, hooks_services: dict[str, ServiceProcess], receiver: Receiver
) -> None:
    if not AXE.exists():
        pytest.skip("axe-core is not installed: `make specs` installs it into .cache/npm")
    intake = hooks_services["intake"]
    company = new_company(infra, "Browser Hooks GmbH")
    directory = open_directory(settings_of(infra))
    try:
        admin = enrol_staff(directory, company["id"], "Hanna Hooks")
    finally:
        directory.engine.dispose()
    box = receiver.mailbox()
    # bypass_csp: axe is added as an inline script, which the pages' CSP rightly refuses.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()

    page.goto(f"{intake.url}/sign-in")
    page.fill("#email", admin["email"])
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{intake.url}/")

    # The navigation leads to the webhooks page.
    page.click("nav.mainnav a[href='/webhooks']")
    page.wait_for_url(f"{intake.url}/webhooks")
    assert page.get_attribute("nav.mainnav a[href='/webhooks']", "aria-current") == "page"
    accessible(page, "webhooks-empty")

    # A refused address: the message is next to the field, named by aria-describedby.
    page.focus("#url")
    page.keyboard.type("https://10.0.0.1/hooks")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # the first event's checkbox
    page.click("#new-endpoint-form button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#url-error").count() == 1, page.inner_text("main")
    assert "url-error" in (page.get_attribute("#url", "aria-describedby") or "")
    accessible(page, "webhooks-refused")

    # The receiver's address: added, its secret shown this once.
    page.fill("#url", box.url)
    page.check("input[name=event_types][value='application.status_changed']")
    page.focus("#description")
    page.keyboard.type("ERP")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    secret = page.input_value("#new-secret")
    assert secret.startswith("whsec_")
    box.secrets.append(secret)
    accessible(page, "webhooks-secret")

    # Its page: a test message, then the log shows its attempt.
    page.click(f"a:text('{box.url}')")
    page.wait_for_load_state()
    page.click("button:text('Send a test message')")
    page.wait_for_url(re.compile(r"done=test$"))

    endpoint_id = page.url.split("/webhooks/")[1].split("?")[0]
    with hooks_services["notify"].client(company["api_key"]) as api:
        wait_for_log(api, endpoint_id, 1)
    page.reload()
    assert page.locator("ol.attempts li:has-text('HTTP 200')").count() == 1
    accessible(page, "webhook-log")

    # The e-mail choice.
    page.click("nav.mainnav a[href='/me/emails']")
    page.wait_for_url(f"{intake.url}/me/emails")
    page.uncheck("input[name=event_types][value='licence.issued']")
    page.click("#emails-form button[type=submit]")
    page.wait_for_url(re.compile(r"done=saved$"))
    assert not page.is_checked("input[name=event_types][value='licence.issued']")
    accessible(page, "emails")
    context.close()
