"""/docs and /redoc work on a machine without internet: every asset comes from the service."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser.conftest import ARTIFACTS
from tests.support import ServiceProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
@pytest.mark.parametrize("name", ["intake", "review"])
def test_the_documentation_pages_load_nothing_from_elsewhere(
    services: dict[str, ServiceProcess], name: str, page: str
) -> None:
    service = services[name]
    html = httpx.get(service.url + page).text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert assets, "the page names no scripts or styles: the check would be empty"
    for asset in assets:
        assert not urlsplit(asset).netloc, f"{page} loads {asset} from another host"
        assert httpx.get(service.url + asset).status_code == 200, asset
    assert "cdn." not in html and "fonts.googleapis" not in html
    # What the page's scripts might fetch on their own (ReDoc's footer logo) is refused too.
    policy = httpx.get(service.url + page).headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy


def _offline(page: Any, base: str) -> list[str]:
    """Refuse every request that leaves the service; return what was refused."""
    refused: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(base):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return refused


def test_swagger_ui_and_redoc_render_the_api_without_a_network(
    browser: Any, services: dict[str, ServiceProcess]
) -> None:
    intake = services["intake"]
    page = browser.new_page()
    refused = _offline(page, intake.url)
    page.goto(intake.url + "/docs")
    page.locator(".swagger-ui .opblock-summary-path", has_text="/v1/applications").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "docs-swagger-offline.png"))
    page.goto(intake.url + "/redoc")
    # ReDoc renders the document's description and the first operation from /openapi.json.
    page.get_by_role("heading", name="The process is alive").wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "docs-redoc-offline.png"))
    assert refused == [], "a documentation page reached outside the service"
    page.close()
