"""Officials search the queue by a MOFCOM number and open a priority list, in a real browser."""

from __future__ import annotations

import copy
import csv
import io
import uuid
from typing import Any

import httpx
import pytest

from tests.browser.test_console import APPLICATION, shot, sign_in
from tests.integration.review_support import act
from tests.support import ServiceProcess, wait_until

pytestmark = pytest.mark.browser


def _submit(intake: ServiceProcess, api_key: str, mofcom: str) -> dict[str, Any]:
    body = copy.deepcopy(APPLICATION) | {"mofcom_application_number": mofcom}
    with intake.client(api_key) as c:
        r = c.post("/v1/applications", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())


def _case_id(review: ServiceProcess, token: str, reference: str) -> str:
    def find() -> str | None:
        with review.client(token) as c:
            items = c.get("/v1/cases", params={"q": reference}).json()["items"]
        return items[0]["id"] if items else None

    return wait_until(find, timeout=30, what=f"case {reference} opened")


def test_officials_find_a_case_by_its_mofcom_number_and_open_the_list_it_was_sent_on(
    browser: Any, services: dict[str, ServiceProcess], people: dict[str, Any]
) -> None:
    intake, review = services["intake"], services["review"]
    eu_token, cn_token = people["eu_supervisor"]["token"], people["cn_officer"]["token"]
    serial = uuid.uuid4().int % 10**9
    numbers = [f"MOFCOM-2026-{serial + n:09d}" for n in (1, 2)]
    apps = [_submit(intake, people["company"]["api_key"], number) for number in numbers]
    ids = [_case_id(review, eu_token, app["reference"]) for app in apps]
    act(review, eu_token, ids[0], "admit")
    act(review, eu_token, ids[1], "admit")
    act(review, eu_token, ids[0], "set_priority", tier="P3", reason="browser test")
    act(review, eu_token, ids[1], "set_priority", tier="P1", reason="browser test")

    eu = sign_in(browser, review, people["eu_supervisor"])
    # Part of the number: its serial, typed in lower case, finds that case and no other.
    eu.fill("input[name=q]", numbers[0].lower().removeprefix("mofcom-2026-"))
    eu.click("form.filters button[type=submit]")
    refs = eu.locator("table.queue a.ref").all_inner_texts()
    assert refs == [apps[0]["reference"]]
    shot(eu, "11-eu-search-by-mofcom-number")
    eu.fill("input[name=q]", "x")
    eu.click("form.filters button[type=submit]")
    assert "2 to 100 characters" in eu.locator("#q-error").inner_text()

    eu.click("nav.mainnav a:text('Priority lists')")
    for case_id in ids:
        eu.check(f"input[name=case_id][value='{case_id}']")
    eu.click("#issue-list button[type=submit]")
    assert "issued and sent to China" in eu.content()

    cn = sign_in(browser, review, people["cn_officer"])
    cn.fill("input[name=q]", numbers[1])
    cn.click("form.filters button[type=submit]")
    assert cn.locator("table.queue a.ref").all_inner_texts() == [apps[1]["reference"]]
    cn.click("nav.mainnav a:text('Priority lists')")
    with review.client(cn_token) as c:
        number = c.get("/v1/priority-lists").json()["items"][0]["number"]
    cn.click(f"a[href='/priority-lists/{number}']")
    assert cn.locator("h1").inner_text() == f"Priority list No. {number}"
    # In list order: the P1 case first, though it was submitted second.
    listed = cn.locator("#listed-cases a.ref").all_inner_texts()
    assert listed == [apps[1]["reference"], apps[0]["reference"]]
    assert people["company"]["name"] not in cn.content(), "China does not see who applied"
    shot(cn, "12-cn-priority-list")

    href = cn.locator("a:text('Download CSV')").get_attribute("href")
    assert href == f"/priority-lists/{number}.csv"
    cookies = {c["name"]: c["value"] for c in cn.context.cookies()}
    with httpx.Client(base_url=review.url, cookies=cookies, timeout=20) as c:
        answer = c.get(href)
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert [r["mofcom_application_number"] for r in rows] == [numbers[1], numbers[0]]

    cn.click(f"#listed-cases a.ref:text('{apps[1]['reference']}')")
    assert numbers[1] in cn.content()
    eu.context.close()
    cn.context.close()
