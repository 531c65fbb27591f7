"""The officials' journeys that had only HTTP tests, in a real browser (issue 18): an EU
supervisor adopts a priority-rules draft, a CN supervisor assigns a case to a CN officer and
records the joint meeting when the case leaves joint review.

One deployment and one browser for the module (conftest.py), each official signed in once
through the form (test_console.sign_in keeps the session); each journey's page is saved in
test-artifacts/ (docs/console.md shows them).
"""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Any

import pytest

from tests.browser.test_console import opened, sign_in, snap, submit
from tests.support import ServiceProcess

pytestmark = pytest.mark.browser


def _in_cn_review(services: dict[str, ServiceProcess], people: dict[str, Any]) -> dict[str, Any]:
    """A new case admitted by the EU and sent to China on a list of its own (over the API)."""
    intake, review = services["intake"], services["review"]
    app = submit(intake, people["company"]["api_key"])
    case = opened(review, people["eu_supervisor"]["token"], app["reference"])
    with review.client(people["eu_supervisor"]["token"]) as c:
        admitted = c.post(
            f"/v1/cases/{case['id']}/actions",
            json={"action": "admit"},
            headers={"If-Match": str(case["version"])},
        )
        assert admitted.status_code == 200, admitted.text
        assert c.post("/v1/priority-lists", json={"case_ids": [case["id"]]}).status_code == 201
    return case


def test_an_eu_supervisor_simulates_and_adopts_a_priority_rules_draft(
    browser: Any, services: dict[str, ServiceProcess], people: dict[str, Any]
) -> None:
    review = services["review"]
    page = sign_in(browser, review, people["eu_supervisor"])
    page.goto(f"{review.url}/priority-rules")
    in_force = page.input_value("#draft")
    version = f"browser-{uuid.uuid4().hex[:8]}"
    # The rules in force under a version of their own: no tier changes, for the other tests.
    draft = re.sub(r"(?m)^version: .*$", f'version: "{version}"', in_force, count=1)
    assert draft != in_force
    page.fill("#draft", draft)
    page.click("button[value=simulate]")
    page.wait_for_load_state()
    simulation = page.locator("#simulation")
    assert f"Simulation of {version}" in simulation.inner_text()
    assert "No open case would change tier." in simulation.inner_text()
    page.fill("#reason", "Same rules, versioned for the browser test")
    snap(page.locator("main"), "console-priority-rules-simulated")
    page.click("button[value=adopt]")
    page.wait_for_url(re.compile(r"/priority-rules\?adopted="))
    assert f"Rule set {version} adopted" in page.locator("[role=status]").inner_text()
    adopted = page.locator("aside").inner_text()
    assert version in adopted and "Same rules, versioned for the browser test" in adopted
    assert people["eu_supervisor"]["name"] in adopted
    with review.client(people["eu_supervisor"]["token"]) as c:
        assert c.get("/v1/priority/rules").json()["version"] == version
    page.context.close()


def test_a_cn_supervisor_assigns_a_case_and_records_the_joint_meeting_as_it_leaves(
    browser: Any, services: dict[str, ServiceProcess], people: dict[str, Any]
) -> None:
    review = services["review"]
    case = _in_cn_review(services, people)
    officer, supervisor = people["cn_officer"], people["cn_supervisor"]
    page = sign_in(browser, review, supervisor)
    page.goto(f"{review.url}/cases/{case['id']}")

    # Assignment: the officials of the side, by name; the CN contact becomes the officer.
    names = page.locator("#assign-official option").all_inner_texts()
    assert any(officer["name"] in n for n in names)
    assert not any(people["eu_supervisor"]["name"] in n for n in names), "the side's only"
    page.select_option("#assign-official", officer["id"])
    snap(page.locator("aside section.card").first, "console-assign-to-an-official")
    page.click(".assignform button[type=submit]")
    page.wait_for_load_state()
    assert "Point of contact changed." in page.locator("[role=status]").inner_text()
    contacts = page.locator("aside section.card").first.inner_text()
    assert re.search(rf"CN\s+{re.escape(officer['name'])}", contacts), contacts

    # Escalated to the joint meeting, then returned from it with the meeting's record.
    escalate = page.locator("details[data-action='escalate']")
    escalate.locator("summary").click()
    escalate.locator("[name=reason]").fill("The end user needs both sides' view")
    escalate.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "Joint review" in page.locator(".casehead").inner_text()
    back = page.locator("details[data-action='return_to_review']")
    back.locator("summary").click()
    back.locator("[name='meeting.held_on']").fill(date.today().isoformat())
    back.locator("[name='meeting.outcome']").fill("MOFCOM decides within ten days")
    for official in (people["eu_supervisor"], supervisor):
        back.locator(f"input[type=checkbox][value='{official['id']}']").check()
    snap(back, "console-joint-meeting-form")
    back.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "CN review" in page.locator(".casehead").inner_text()
    meetings = page.locator("#joint-meetings")
    shown = meetings.inner_text()
    assert "MOFCOM decides within ten days" in shown
    assert people["eu_supervisor"]["name"] in shown and supervisor["name"] in shown
    snap(meetings, "console-joint-meeting-recorded")
    with review.client(people["eu_supervisor"]["token"]) as c:
        view = c.get(f"/v1/cases/{case['id']}").json()
    assert view["points_of_contact"]["CN"]["id"] == officer["id"]
    (meeting,) = view["joint_meetings"]
    assert {p["id"] for p in meeting["participants"]} == {
        people["eu_supervisor"]["id"],
        supervisor["id"],
    }
    page.context.close()
