"""The Commission's monthly report prints as one page, without the console around it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_console import opened, sign_in, submit
from tests.support import ServiceProcess

pytestmark = pytest.mark.browser


def test_the_monthly_report_prints_on_one_page_without_navigation_or_forms(
    browser: Any, services: dict[str, ServiceProcess], people: dict[str, Any]
) -> None:
    intake, review = services["intake"], services["review"]
    app = submit(intake, people["company"]["api_key"])
    opened(review, people["eu_supervisor"]["token"], app["reference"])
    page = sign_in(browser, review, people["eu_supervisor"])
    page.goto(review.url + "/reports/monthly")
    assert page.locator("#monthly-report").is_visible()
    assert int(page.locator("#report-filed").inner_text()) >= 1
    assert page.locator("header.topbar").is_visible() and page.locator("form.filters").is_visible()
    page.emulate_media(media="print")
    assert not page.locator("header.topbar").is_visible(), "print styles drop the navigation"
    assert not page.locator("form.filters").is_visible()
    assert page.locator("#categories").is_visible()
    pdf = page.pdf(prefer_css_page_size=True, print_background=True)
    (ARTIFACTS / "monthly-report.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 1, "one printed page"
    page.context.close()
