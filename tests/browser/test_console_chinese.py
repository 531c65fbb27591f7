"""A CN officer's day in Simplified Chinese: queue, case, acknowledge, approve (issue 19).

The officer chooses 简体中文 with the keyboard on the page's language switch; the choice is
kept with the official, so every page after it, and a new sign-in, is in Chinese. The
screenshots go to test-artifacts/, and to docs/screenshots/ with REE_DOCS_SCREENSHOTS=1
(docs/console.md shows them beside the English ones).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import docs_shot
from tests.browser.test_console import (
    approve_form,
    approved_at_30_kg,
    opened,
    sign_in,
    submit,
    take,
)
from tests.support import ServiceProcess

pytestmark = pytest.mark.browser

shot = docs_shot


def sent_to_china(review: ServiceProcess, supervisor: str, case: dict[str, Any]) -> None:
    """The EU side's part, through the API: admitted, then on a priority list."""
    with review.client(supervisor) as c:
        current = c.get(f"/v1/cases/{case['id']}").json()
        r = c.post(
            f"/v1/cases/{case['id']}/actions",
            json={"action": "admit"},
            headers={"If-Match": str(current["version"])},
        )
        assert r.status_code == 200, r.text
        r = c.post("/v1/priority-lists", json={"case_ids": [case["id"]]})
        assert r.status_code == 201, r.text


def test_a_cn_officer_walks_a_case_to_approval_in_chinese(
    browser: Any, services: dict[str, ServiceProcess], people: dict[str, Any]
) -> None:
    intake, review = services["intake"], services["review"]
    app = submit(intake, people["company"]["api_key"])
    case = opened(review, people["eu_supervisor"]["token"], app["reference"])
    sent_to_china(review, people["eu_supervisor"]["token"], case)

    cn = sign_in(browser, review, people["cn_officer"])
    assert cn.locator("html").get_attribute("lang") == "en"
    assert cn.locator("h1").inner_text() == "CN queue"
    shot(cn, "en-01-cn-queue")
    cn.click(f"a.ref:text('{app['reference']}')")
    shot(cn, "en-02-cn-case")

    # The switch, by keyboard: focus the list, pick the second language, press the button.
    cn.focus("#language")
    cn.keyboard.press("ArrowDown")
    cn.keyboard.press("Tab")
    with cn.expect_navigation():  # the post, then its redirect back: wait for the page
        cn.keyboard.press("Enter")
    assert cn.url.endswith(f"/cases/{case['id']}"), "back on the same page"
    assert cn.locator("html").get_attribute("lang") == "zh-Hans"
    assert "中方审查" in cn.locator(".casehead").inner_text()

    cn.click("nav.mainnav a[href='/']")
    assert cn.locator("h1").inner_text() == "中方案件队列"
    queue = cn.locator("table.queue").inner_text()
    assert "中方审查" in queue and "镝" not in queue, "states labelled; chips keep the symbol"
    assert "磁体" in queue, "forms labelled"
    shot(cn, "zh-Hans-01-cn-queue")

    cn.click(f"a.ref:text('{app['reference']}')")
    text = cn.locator("main").inner_text()
    for words in ("申请", "出口商", "镝 (Dy)", "磁体", "风能", "年度出口许可证", "办理记录"):
        assert words in text, words
    assert "cn_review" not in text and "wind_energy" not in text, "codes are never shown raw"
    shot(cn, "zh-Hans-02-cn-case")

    take(cn, "acknowledge")
    assert "确认受理（商务部已接收）：已完成。" in cn.content()
    shot(cn, "zh-Hans-03-cn-case-acknowledged")

    panel = approve_form(cn, f"LIC-{app['reference']}")
    assert "批准并签发许可证" in panel.inner_text()
    assert "年度出口许可证" in panel.locator("select[name='licence.type']").inner_text()
    # Quantities as the language writes numbers, with the unit: 250, not 250.0.
    assert "申请 250 千克" in panel.inner_text() and "250.0" not in panel.inner_text()
    assert cn.input_value("input[name='licence.lines.1.approved_quantity_kg']") == "250"
    shot(cn, "zh-Hans-04-cn-approve-form")
    panel.locator("button[type=submit]").click()
    cn.wait_for_load_state()
    assert "已批准" in cn.locator(".casehead").inner_text()
    assert f"许可证 LIC-{app['reference']}" in cn.content()
    shot(cn, "zh-Hans-05-cn-case-approved")

    approved_at_30_kg(review, people["eu_supervisor"]["token"], case["id"])
    cn.context.close()

    # The choice is the official's: a new browser, signed in again, opens in Chinese.
    again = sign_in(browser, review, people["cn_officer"])
    assert again.locator("html").get_attribute("lang") == "zh-Hans"
    again.context.close()
