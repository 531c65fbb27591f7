"""A company's staff member applies in the portal with the keyboard alone (issue 21): Tab,
typing and Enter fill the form, the errors show next to their fields and in the summary at
the top, fixed, the form is sent and the application's page opens. axe-core finds no serious
or critical violation on the form, empty and with errors. The screenshots go to
test-artifacts/, and with REE_DOCS_SCREENSHOTS=1 to docs/screenshots/ (docs/portal.md,
"Applying")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.accounts.sessions import PORTAL_COOKIE_NAME as COOKIE_NAME
from shared.directory import open_directory
from tests.browser.axe import AXE, accessible
from tests.browser.conftest import docs_shot
from tests.integration.conftest import new_company
from tests.people import enrol_staff, portal, settings_of
from tests.support import Infra, ServiceProcess

pytestmark = pytest.mark.browser


def shot(page: Any, name: str) -> None:
    docs_shot(page, name, full_page=True)


@pytest.fixture(scope="module")
def intake(infra: Infra) -> Iterator[ServiceProcess]:
    """Intake alone: the form needs no other service."""
    started = ServiceProcess("intake", infra.env()).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def staff(infra: Infra) -> dict[str, Any]:
    company = new_company(infra, "Keyboard Magnets GmbH")
    directory = open_directory(settings_of(infra))
    try:
        return enrol_staff(directory, company["id"], "Paula Portal", role="member")
    finally:
        directory.engine.dispose()


def signed_in_page(browser: Any, intake: ServiceProcess, staff: dict[str, Any]) -> Any:
    """A browser tab with the staff member's portal session (signed in through the form)."""
    with portal(intake.url, staff) as client:
        session = client.cookies[COOKIE_NAME]
    # bypass_csp: axe-core is added to the page as a script the policy would refuse.
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-GB", bypass_csp=True
    )
    context.add_cookies([{"name": COOKIE_NAME, "value": session, "url": intake.url}])
    return context.new_page()


def tab_to(page: Any, element_id: str, limit: int = 120) -> None:
    """Press Tab until the element has the focus."""
    for _ in range(limit):
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached #{element_id}")


def type_into(page: Any, element_id: str, text: str) -> None:
    tab_to(page, element_id)
    page.keyboard.type(text)


def send(page: Any) -> None:
    """Enter in the field that has the focus: the form is sent, the answer shown."""
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_a_staff_member_applies_with_the_keyboard_alone(
    browser: Any, intake: ServiceProcess, staff: dict[str, Any]
) -> None:
    if not AXE.exists():
        pytest.skip("axe-core is not installed: `make specs` installs it into .cache/npm")
    page = signed_in_page(browser, intake, staff)
    page.goto(intake.url + "/apply")
    assert page.locator("h1").inner_text() == "New application"
    accessible(page, "apply-form")
    shot(page, "portal-apply-form")

    type_into(page, "f-mofcom_application_number", "MOFCOM-2026-KEYS01")
    type_into(page, "f-licence_type", "Three")  # a select takes the typed option's start
    type_into(page, "f-exporter-name", "Baotou Magnet Co.")
    type_into(page, "f-exporter-uscc", "9115")  # too short: refused
    type_into(page, "f-consignee-name", "Keyboard Magnets GmbH")
    type_into(page, "f-consignee-country", "Germany")
    type_into(page, "f-end_user-name", "Keyboard Magnets GmbH")
    type_into(page, "f-end_user-country", "Germany")
    type_into(page, "f-end_use-category", "Wind")
    type_into(page, "f-end_use-description", "generators for offshore wind turbines")
    type_into(page, "f-urgency-production_stop_date", "2020-01-01")
    type_into(page, "f-goods-0-element", "Dy")
    type_into(page, "f-goods-0-form", "magnet")
    type_into(page, "f-goods-0-hs_code", "8505.11")
    page.keyboard.press("Escape")  # the HS codes' suggestions
    type_into(page, "f-goods-0-quantity_kg", "40")
    send(page)

    summary = page.locator(".error-summary")
    assert summary.is_visible()
    assert page.locator("#f-exporter-uscc").get_attribute("aria-invalid") == "true"
    assert page.locator("#f-exporter-uscc-error").inner_text() == (
        "must be 18 characters, digits and capital letters"
    )
    assert summary.locator("a[href='#f-exporter-uscc']").is_visible()
    # The values typed are all kept, the selects' choices too.
    assert page.input_value("#f-exporter-name") == "Baotou Magnet Co."
    assert page.input_value("#f-consignee-country") == "DE"
    assert page.input_value("#f-goods-0-form") == "magnet"
    accessible(page, "apply-errors")
    shot(page, "portal-apply-errors")

    tab_to(page, "f-exporter-uscc")
    page.keyboard.press("Control+A")
    page.keyboard.type("91150200MA0N1X2Y3Z")
    send(page)
    # Screened as the API screens: the past production stop date is the one left.
    assert page.locator("#f-urgency-production_stop_date-error").inner_text() == (
        "must not be in the past"
    )
    assert page.locator("#f-exporter-uscc").get_attribute("aria-invalid") is None

    tab_to(page, "f-urgency-production_stop_date")
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    send(page)
    assert page.url.startswith(f"{intake.url}/applications/")
    assert "MOFCOM-2026-KEYS01" in page.locator("main").inner_text()
    page.context.close()
