"""Officials open a case's documents from its page in the console (Chromium via Playwright)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_console import opened, shot, sign_in, snap, submit
from tests.integration.test_review_flow import act
from tests.support import ServiceProcess, wait_until

pytestmark = pytest.mark.browser

PRIVATE_NAME = "Endverbleibserklärung.pdf"
SHARED_NAME = "contract.pdf"


def _upload(
    intake: ServiceProcess, api_key: str, app_id: str, name: str, content: bytes, shared: bool
) -> str:
    with intake.client(api_key) as c:
        r = c.post(
            f"/v1/applications/{app_id}/documents",
            files={"file": (name, content)},
            data={"kind": "contract", "shareable": "true" if shared else "false"},
        )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _open(page: Any, name: str) -> tuple[str, bytes]:
    """Click the document's link on the case page: the name and bytes the browser saved."""
    with page.expect_download() as info:
        page.click(f"section.card a:text-is('{name}')")
    download = info.value
    return download.suggested_filename, Path(download.path()).read_bytes()


def test_officials_open_the_documents_their_side_may_see_from_the_case_page(
    browser: Any, services: dict[str, ServiceProcess], people: dict[str, Any]
) -> None:
    intake, review = services["intake"], services["review"]
    api_key = people["company"]["api_key"]
    eu_token = people["eu_supervisor"]["token"]
    tag = uuid.uuid4().hex
    private = f"%PDF-1.4\n% private {tag}\n%%EOF\n".encode()
    shared = f"%PDF-1.4\n% shared {tag}\n%%EOF\n".encode()
    app = submit(intake, api_key)
    private_id = _upload(intake, api_key, app["id"], PRIVATE_NAME, private, shared=False)
    shared_id = _upload(intake, api_key, app["id"], SHARED_NAME, shared, shared=True)
    case = opened(review, eu_token, app["reference"])

    def listed() -> bool:
        with review.client(eu_token) as c:
            return len(c.get(f"/v1/cases/{case['id']}").json()["documents"]) == 2

    wait_until(listed, timeout=30, what="both documents in review")

    eu = sign_in(browser, review, people["eu_supervisor"])
    eu.goto(f"{review.url}/cases/{case['id']}")
    assert _open(eu, PRIVATE_NAME) == (PRIVATE_NAME, private)
    assert _open(eu, SHARED_NAME) == (SHARED_NAME, shared)
    shot(eu, "07-eu-case-documents")
    snap(
        eu.locator("section.card", has=eu.locator("a[href*='/documents/']")), "console-eu-documents"
    )

    assert act(review, eu_token, case, "admit").status_code == 200
    with review.client(eu_token) as c:
        r = c.post("/v1/priority-lists", json={"case_ids": [case["id"]]})
        assert r.status_code == 201, r.text

    cn = sign_in(browser, review, people["cn_officer"])
    cn.goto(f"{review.url}/cases/{case['id']}")
    links = cn.locator("a[href*='/documents/']").evaluate_all("els => els.map(e => e.text)")
    assert links == [SHARED_NAME], "China is shown only the shareable document"
    assert _open(cn, SHARED_NAME) == (SHARED_NAME, shared)
    shot(cn, "08-cn-case-documents")
    snap(
        cn.locator("section.card", has=cn.locator("a[href*='/documents/']")), "console-cn-documents"
    )
    refused = cn.goto(f"{review.url}/cases/{case['id']}/documents/{private_id}")
    assert refused is not None and refused.status == 404
    assert PRIVATE_NAME not in cn.content() and tag not in cn.content()

    with review.client(eu_token) as c:
        entries = c.get(f"/v1/cases/{case['id']}/audit").json()["entries"]
    assert [
        (e["actor"]["id"], e["payload"]["document_id"])
        for e in entries
        if e["action"] == "document_downloaded"
    ] == [
        (people["eu_supervisor"]["id"], private_id),
        (people["eu_supervisor"]["id"], shared_id),
        (people["cn_officer"]["id"], shared_id),
    ]
    eu.context.close()
    cn.context.close()
