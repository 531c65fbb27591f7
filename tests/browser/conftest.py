"""Browser tests: intake and review as real processes, Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.people import enrol_officials
from tests.support import ROOT, Infra, ServiceProcess, operator

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
# The screenshots docs/ shows are written there only when asked (REE_DOCS_SCREENSHOTS=1):
# a test run leaves the checkout as it found it.
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"


def docs_shot(page: Any, name: str, full_page: bool = False) -> None:
    """A screenshot for docs/: always to test-artifacts/ (the full page), and to
    docs/screenshots/ (the viewport, or the full page) with REE_DOCS_SCREENSHOTS=1."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    if os.environ.get("REE_DOCS_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_SCREENSHOTS / f"{name}.png"), full_page=full_page)


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (CI installs it)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def services(infra: Infra) -> Iterator[dict[str, ServiceProcess]]:
    intake = ServiceProcess("intake", infra.env()).start()
    review = ServiceProcess("review", infra.env()).start()
    yield {"intake": intake, "review": review}
    review.stop()
    intake.stop()


@pytest.fixture(scope="module")
def people(infra: Infra) -> dict[str, dict[str, Any]]:
    """A company, and officials who are people (they sign in with e-mail, password, code)."""
    made: dict[str, dict[str, Any]] = {
        "company": operator(
            infra,
            "company",
            "create",
            "--name",
            "Browser Magnets GmbH",
            "--eori",
            "DE" + uuid.uuid4().hex[:12].upper(),
        )
    }
    names = {"eu_supervisor": "Claire Dubois", "cn_officer": "Chen Wei", "cn_supervisor": "Li Na"}
    officials = enrol_officials(infra, names)
    return made | {key: officials[key] for key in names}
