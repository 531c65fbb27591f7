"""A company's admin creates and revokes an API key in a real browser (issues 20 and 21):
signed in as a person does, by keyboard from the navigation to the form, the secret shown
once, the revocation confirmed; axe-core finds no serious or critical violation on any of
the pages (the keys, the new key, the confirmation, the colleagues)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.directory import open_directory
from tests.browser.axe import AXE, accessible
from tests.people import PASSWORD, enrol_staff, settings_of
from tests.support import Infra, ServiceProcess, operator

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def intake(infra: Infra) -> Iterator[ServiceProcess]:
    service = ServiceProcess("intake", infra.env()).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def admin(infra: Infra) -> dict[str, Any]:
    eori = "DE" + uuid.uuid4().hex[:12].upper()
    company = operator(infra, "company", "create", "--name", "Omega Oxides AG", "--eori", eori)
    directory = open_directory(settings_of(infra))
    try:
        return enrol_staff(directory, company["id"], "Olga Owner")
    finally:
        directory.engine.dispose()


def test_an_admin_creates_and_revokes_a_key_and_axe_finds_nothing_serious(
    browser: Any, intake: ServiceProcess, admin: dict[str, Any]
) -> None:
    if not AXE.exists():
        pytest.skip("axe-core is not installed: `make specs` installs it into .cache/npm")
    # bypass_csp: axe is added as an inline script, which the pages' CSP rightly refuses.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.goto(f"{intake.url}/sign-in")
    page.fill("#email", admin["email"])
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{intake.url}/")

    page.click("nav.mainnav >> text=API keys")
    page.wait_for_url(f"{intake.url}/keys")
    accessible(page, "admin-keys")
    page.focus("#name")
    page.keyboard.type("Customs broker")
    page.keyboard.press("Enter")  # submits the form, as a keyboard user does
    page.wait_for_selector("#new-key")
    accessible(page, "admin-new-key")
    secret = page.input_value("#new-key")
    assert secret.startswith("ree_ak_")
    assert httpx.get(
        f"{intake.url}/v1/applications", headers={"Authorization": f"Bearer {secret}"}
    ).is_success

    page.get_by_role("link", name="Revoke Customs broker").click()
    page.wait_for_url(re.compile(r"/keys/[0-9a-f-]+/revoke$"))
    accessible(page, "admin-revoke")
    page.click("button.btn-danger")
    page.wait_for_url(f"{intake.url}/keys?done=revoked")
    assert "Customs broker" not in page.inner_text("main")
    assert page.get_by_role("status").inner_text().startswith("The key is revoked")
    refused = httpx.get(
        f"{intake.url}/v1/applications", headers={"Authorization": f"Bearer {secret}"}
    )
    assert refused.status_code == 401

    page.click("nav.mainnav >> text=Colleagues")
    page.wait_for_url(f"{intake.url}/colleagues")
    accessible(page, "admin-colleagues")
    context.close()
