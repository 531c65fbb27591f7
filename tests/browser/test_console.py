"""An EU supervisor and a CN officer walk a case from screening to approval in the console."""

from __future__ import annotations

import copy
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from shared.accounts.sessions import COOKIE_NAME
from tests.browser.conftest import ARTIFACTS
from tests.people import AUTHENTICATOR
from tests.support import Infra, ServiceProcess, operator, wait_until

pytestmark = pytest.mark.browser

APPLICATION: dict[str, Any] = {
    "mofcom_application_number": "MOFCOM-2026-771100",
    "licence_type": "annual",
    "exporter": {"name": "Ganzhou Heavy Rare Earth Metals Co.", "uscc": "91360700MA0N1X2Y3Z"},
    "consignee": {"name": "Browser Magnets GmbH", "country": "DE"},
    "end_user": {"name": "Browser Magnets GmbH", "country": "DE"},
    "end_use": {"category": "wind_energy", "description": "direct-drive generators"},
    "goods": [
        {
            "element": "Dy",
            "form": "magnet",
            "hs_code": "8505.11",
            "quantity_kg": 250,
            "value_eur": 90000,
        },
        {
            "element": "Tb",
            "form": "oxide",
            "hs_code": "2846.90",
            "quantity_kg": 40,
            "value_eur": 60000,
        },
    ],
    "urgency": {
        "stock_days": 20,
        # Ahead of today: intake refuses a production stop date in the past.
        "production_stop_date": (date.today() + timedelta(days=19)).isoformat(),
        "jobs_at_risk": 420,
    },
    "sme": False,
}


def submit(intake: ServiceProcess, api_key: str) -> dict[str, Any]:
    with intake.client(api_key) as c:
        body = copy.deepcopy(APPLICATION)
        # A company registers a MOFCOM number once: each submission a number of its own.
        body["mofcom_application_number"] = f"MOFCOM-2026-{uuid.uuid4().hex[:10].upper()}"
        r = c.post("/v1/applications", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())


def opened(review: ServiceProcess, token: str, reference: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        with review.client(token) as c:
            items = c.get("/v1/cases", params={"limit": 200}).json()["items"]
        return next((i for i in items if i["reference"] == reference), None)

    return wait_until(find, timeout=30, what=f"case {reference} opened")


# Each official's signed-in browser state: the first page of a test signs in through the
# form as a person does; later tests open their windows with that session's cookie.
_STATES: dict[str, Any] = {}


def sign_in(
    browser: Any, review: ServiceProcess, official: dict[str, Any], width: int = 1280
) -> Any:
    viewport = {"width": width, "height": 900}
    kept = _STATES.get(official["email"])
    if kept is not None:
        page = browser.new_context(viewport=viewport, storage_state=kept).new_page()
        page.goto(review.url + "/")
        if not page.url.endswith("/sign-in"):
            return page
        page.context.close()
    page = browser.new_context(viewport=viewport).new_page()
    page.goto(review.url + "/")
    assert page.url.endswith("/sign-in"), "the console asks the official to sign in first"
    fill_sign_in(page, official)
    page.wait_for_url(review.url + "/")
    _STATES[official["email"]] = page.context.storage_state()
    return page


def fill_sign_in(page: Any, official: dict[str, Any]) -> None:
    """Type the e-mail, password and code, moving between the fields by keyboard."""
    page.fill("#email", official["email"])
    page.keyboard.press("Tab")
    page.keyboard.type(official["password"])
    page.keyboard.press("Tab")
    page.keyboard.type(AUTHENTICATOR.code(official["totp_secret"]))
    page.keyboard.press("Enter")


def take(page: Any, action: str) -> None:
    """Open an action's form in the actions panel and confirm it with its prefilled fields."""
    panel = page.locator(f"details[data-action='{action}']")
    panel.locator("summary").click()
    panel.locator("button[type=submit]").click()
    page.wait_for_load_state()


def approve_form(page: Any, number: str) -> Any:
    """The approve panel opened, licence `number` typed (none is made up), line 2 approved at
    30 kg of the 40 asked; not yet sent."""
    panel = page.locator("details[data-action='approve']")
    panel.locator("summary").click()
    assert page.input_value("input[name='licence.number']") == "", "no number is made up"
    page.fill("input[name='licence.number']", number)
    page.fill("input[name='licence.lines.2.approved_quantity_kg']", "30")
    return panel


def approved_at_30_kg(review: ServiceProcess, token: str, case_id: str) -> None:
    """The API sees what the console did: approved, line 2 at 30 kg."""
    with review.client(token) as c:
        final = c.get(f"/v1/cases/{case_id}").json()
    assert final["state"] == "approved"
    assert float(final["licence"]["lines"][1]["approved_quantity_kg"]) == 30


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def snap(target: Any, name: str) -> None:
    """A small picture of one part of a page (a card, a form, a row), for docs/console.md."""
    target.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_an_eu_supervisor_and_a_cn_officer_walk_a_case_to_approval(
    browser: Any, services: dict[str, ServiceProcess], people: dict[str, Any]
) -> None:
    intake, review = services["intake"], services["review"]
    app = submit(intake, people["company"]["api_key"])
    case = opened(review, people["eu_supervisor"]["token"], app["reference"])

    eu = sign_in(browser, review, people["eu_supervisor"])
    assert eu.locator("h1").inner_text() == "EU queue"
    eu.fill("input[name=q]", app["reference"])
    eu.click("form.filters button[type=submit]")
    shot(eu, "01-eu-queue")
    eu.click(f"a.ref:text('{app['reference']}')")
    assert "Commercial urgency" in eu.content(), "the EU sees the applicant's urgency"
    actions = sorted(
        eu.locator("details[data-action]").evaluate_all("els => els.map(e => e.dataset.action)")
    )
    assert actions == sorted(["request_information", "admit", "decline", "set_priority"])
    eu.fill("#note-text", "EU-only remark: stock figures checked with the applicant.")
    eu.click("form.noteform button[type=submit]")
    assert "Note added." in eu.content()
    shot(eu, "02-eu-case-screening")
    take(eu, "admit")
    assert "Admit: done." in eu.content()
    assert "Queued for a list" in eu.locator(".casehead").inner_text()

    eu.click("nav.mainnav a:text('Priority lists')")
    eu.check(f"input[name=case_id][value='{case['id']}']")
    eu.click("#issue-list button[type=submit]")
    assert "issued and sent to China" in eu.content()
    shot(eu, "03-eu-priority-list-issued")

    cn = sign_in(browser, review, people["cn_officer"])
    assert cn.locator("h1").inner_text() == "CN queue"
    cn.click(f"a.ref:text('{app['reference']}')")
    page_text = cn.content()
    assert "Commercial urgency" not in page_text
    assert "EU-only remark" not in page_text
    assert "90,000" not in page_text and "jobs" not in page_text.lower()
    take(cn, "acknowledge")
    assert "Acknowledge (MOFCOM accepted): done." in cn.content(), "the action's label"
    shot(cn, "04-cn-case-acknowledged")
    panel = approve_form(cn, f"LIC-{app['reference']}")
    shot(cn, "05-cn-approve-form")
    panel.locator("button[type=submit]").click()
    cn.wait_for_load_state()
    assert "Approved" in cn.locator(".casehead").inner_text()
    assert f"Licence LIC-{app['reference']}" in cn.content()
    shot(cn, "06-cn-case-approved")

    approved_at_30_kg(review, people["eu_supervisor"]["token"], case["id"])
    eu.context.close()
    cn.context.close()


def test_refused_actions_show_a_readable_message_and_change_nothing(
    browser: Any, services: dict[str, ServiceProcess], people: dict[str, Any]
) -> None:
    intake, review = services["intake"], services["review"]
    app = submit(intake, people["company"]["api_key"])
    case = opened(review, people["eu_supervisor"]["token"], app["reference"])
    eu = sign_in(browser, review, people["eu_supervisor"])
    eu.goto(f"{review.url}/cases/{case['id']}")
    # Someone else acts first: the version in the page is now stale.
    with review.client(people["eu_supervisor"]["token"]) as c:
        r = c.post(
            f"/v1/cases/{case['id']}/notes", json={"text": "meanwhile", "visibility": "side"}
        )
        assert r.status_code == 201
        current = c.get(f"/v1/cases/{case['id']}").json()
        r = c.post(
            f"/v1/cases/{case['id']}/actions",
            json={"action": "set_priority", "tier": "P1", "reason": "minister asked"},
            headers={"If-Match": str(current["version"])},
        )
        assert r.status_code == 200, r.text
    take(eu, "admit")
    alert = eu.locator(".alert-error").inner_text()
    assert "changed since you read it" in alert
    panel = eu.locator("details[data-action='decline']")
    panel.locator("summary").click()
    eu.select_option("select[name=reason]", "other")
    panel.locator("button[type=submit]").click()
    eu.wait_for_load_state()
    assert "detail" in eu.locator(".alert-error").inner_text()
    shot(eu, "07-eu-refused-action-message")
    with review.client(people["eu_supervisor"]["token"]) as c:
        assert c.get(f"/v1/cases/{case['id']}").json()["state"] == "eu_screening"
    eu.context.close()


def test_a_cn_officer_proposes_a_refusal_and_a_cn_supervisor_countersigns_it(
    browser: Any, services: dict[str, ServiceProcess], people: dict[str, Any]
) -> None:
    intake, review = services["intake"], services["review"]
    app = submit(intake, people["company"]["api_key"])
    case = opened(review, people["eu_supervisor"]["token"], app["reference"])
    with review.client(people["eu_supervisor"]["token"]) as c:
        version = c.get(f"/v1/cases/{case['id']}").json()["version"]
        admitted = c.post(
            f"/v1/cases/{case['id']}/actions",
            json={"action": "admit"},
            headers={"If-Match": str(version)},
        )
        assert admitted.status_code == 200, admitted.text
        assert c.post("/v1/priority-lists", json={"case_ids": [case["id"]]}).status_code == 201

    cn = sign_in(browser, review, people["cn_officer"])
    cn.goto(f"{review.url}/cases/{case['id']}")
    panel = cn.locator("details[data-action='refuse']")
    panel.locator("summary").click()
    assert cn.input_value("select[name=reason]") == "", "no reason is chosen in advance"
    cn.select_option("select[name=reason]", "listed_entity")
    shot(cn, "12-cn-refusal-proposed-form")
    panel.locator("button[type=submit]").click()
    cn.wait_for_load_state()
    assert "Awaiting countersignature" in cn.locator(".casehead").inner_text()
    assert "CN review" in cn.locator(".casehead").inner_text(), "nothing has taken effect"
    assert cn.locator("form[data-verb='countersign']").count() == 0, "not by its proposer"
    shot(cn, "13-cn-awaiting-countersignature")
    cn.goto(f"{review.url}/?q={app['reference']}")
    row = cn.locator("table.queue tbody tr", has_text=app["reference"])
    assert "Awaiting countersignature" in row.inner_text(), "the queue marks the proposal"
    snap(row, "console-cn-queue-awaiting-countersignature")

    supervisor = sign_in(browser, review, people["cn_supervisor"])
    supervisor.goto(f"{review.url}/cases/{case['id']}")
    card = supervisor.locator("#proposal")
    snap(card, "console-cn-proposal-to-countersign")
    assert "Listed entity" in card.inner_text() or "listed_entity" in card.inner_text()
    card.locator("form[data-verb='countersign'] button[type=submit]").click()
    supervisor.wait_for_load_state()
    assert "Refused" in supervisor.locator(".casehead").inner_text()
    assert "Countersigned" in supervisor.content()
    shot(supervisor, "14-cn-refusal-countersigned")
    with review.client(people["eu_supervisor"]["token"]) as c:
        final = c.get(f"/v1/cases/{case['id']}").json()
    assert final["state"] == "refused"
    refusal = next(e for e in final["history"] if e["action"] == "refuse")
    assert refusal["actor"]["id"] == people["cn_supervisor"]["id"]
    assert refusal["payload"]["proposed_by"] == people["cn_officer"]["id"]
    cn.context.close()
    supervisor.context.close()


def test_the_console_session_is_protected(
    browser: Any, services: dict[str, ServiceProcess], people: dict[str, Any]
) -> None:
    review = services["review"]
    page = sign_in(browser, review, people["cn_supervisor"])
    cookie = next(c for c in page.context.cookies() if c["name"] == COOKIE_NAME)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    response = page.goto(review.url + "/dashboard")
    headers = response.headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert page.locator("svg.chart").count() >= 0
    shot(page, "08-cn-dashboard")
    # A form posted without this session's CSRF token is refused.
    forged = httpx.post(
        review.url + f"/cases/{'0' * 36}/notes",
        data={"text": "forged", "visibility": "joint"},
        cookies={COOKIE_NAME: cookie["value"]},
    )
    assert forged.status_code == 403
    page.context.close()


@pytest.mark.parametrize("width", [1280, 400])
def test_the_dashboard_and_a_case_page_fit_wide_and_narrow_windows(
    browser: Any, services: dict[str, ServiceProcess], people: dict[str, Any], width: int
) -> None:
    review = services["review"]
    page = sign_in(browser, review, people["eu_supervisor"], width=width)
    page.goto(review.url + "/dashboard?group_by=form")
    assert page.locator("#kpi-approval").is_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, "no horizontal scrolling of the whole page"
    shot(page, f"09-dashboard-{width}")
    page.goto(review.url + "/")
    page.click("a.ref >> nth=0")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    shot(page, f"10-case-{width}")
    assert date.today().isoformat()[:4] in page.content()
    page.context.close()


def test_an_invited_official_sets_up_the_account_by_keyboard_signs_in_and_out(
    browser: Any, services: dict[str, ServiceProcess], infra: Infra
) -> None:
    review = services["review"]
    email = f"new.officer.{uuid.uuid4().hex[:8]}@example.eu"
    invited = operator(
        infra, "official", "invite", "--email", email, "--side", "EU", "--role", "officer"
    )
    token = invited["link"].partition("token=")[2]
    page = browser.new_context().new_page()
    page.goto(f"{review.url}/invitation?token={token}")
    assert page.locator("figure.qr svg").count() == 1, "the QR code is drawn in the page"
    for field in ("password", "repeat", "code"):
        assert page.locator(f"label[for={field}]").count() == 1, f"{field} has a label"
    secret = page.locator(".totp-key").inner_text()
    page.focus("#password")
    page.keyboard.type("short")
    page.keyboard.press("Tab")
    page.keyboard.type("short")
    page.keyboard.press("Tab")
    page.keyboard.type(AUTHENTICATOR.code(secret))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("#password-error").is_visible(), "the message is next to the field"
    assert page.locator(".totp-key").inner_text() == secret, "the factor set up stays"
    shot(page, "11-invitation-refused-password")
    page.fill("#password", "a long enough passphrase")
    page.fill("#repeat", "a long enough passphrase")
    page.fill("#code", AUTHENTICATOR.code(secret))
    page.click("form[action='/invitation'] button[type=submit]")
    page.wait_for_url(f"{review.url}/sign-in?notice=welcome")
    person = {"email": email, "password": "a long enough passphrase", "totp_secret": secret}
    fill_sign_in(page, person)
    page.wait_for_url(review.url + "/")
    assert page.locator("h1").inner_text() == "EU queue"
    copied = next(c for c in page.context.cookies() if c["name"] == COOKIE_NAME)["value"]
    page.click("form[action='/sign-out'] button[type=submit]")
    page.wait_for_url(f"{review.url}/sign-in?notice=out")
    # The session ended on the server: a copy of the cookie no longer opens the console.
    again = httpx.get(review.url + "/", cookies={COOKIE_NAME: copied})
    assert again.status_code == 303 and again.headers["location"] == "/sign-in"
    page.context.close()
