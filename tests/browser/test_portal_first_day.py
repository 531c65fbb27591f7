"""A new company's first day in the portal (issue 21), in a real browser: an operator invites
the company's first admin, who accepts the invitation, signs in, applies with the form,
uploads a document, is e-mailed (a real SMTP server) that information is requested,
answers, and sees the decision. Intake, review and notify are real processes; the
officials act through review's API. axe-core finds no serious or critical violation on any
page; the screenshots are docs/portal.md's "A company's first day"."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller

from tests.browser.axe import AXE, accessible
from tests.browser.conftest import ARTIFACTS, docs_shot
from tests.browser.test_console import opened
from tests.integration.notify_support import notify_env
from tests.integration.test_notify_email import Inbox
from tests.integration.test_review_flow import act
from tests.people import PASSWORD, enrol_officials
from tests.support import Infra, ServiceProcess, free_port, operator, started, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(400)]

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
# The form's fields as the example application fills them (docs/examples/application.json).
TYPED = {
    "f-exporter-name": "Baotou Magnet Co.",
    "f-exporter-uscc": "91150200MA0N1X2Y3Z",
    "f-consignee-name": "First Day Magnets GmbH",
    "f-end_user-name": "First Day Magnets GmbH",
    "f-end_use-description": "traction motors for EV platform X",
    "f-goods-0-hs_code": "2805.30",
    "f-goods-0-quantity_kg": "120.5",
}
CHOSEN = {
    "f-licence_type": "three_month",
    "f-consignee-country": "DE",
    "f-end_user-country": "DE",
    "f-end_use-category": "automotive",
    "f-goods-0-element": "Dy",
    "f-goods-0-form": "metal",
}


@pytest.fixture(scope="module")
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture(scope="module")
def first_day(infra: Infra, inbox: tuple[Inbox, int]) -> Iterator[dict[str, ServiceProcess]]:
    """Notify e-mailing through the SMTP server, intake forwarding to it, and review."""
    _handler, port = inbox
    smtp = {"REE_SMTP_URL": f"smtp://127.0.0.1:{port}", "REE_SMTP_FROM": "channel@ree.example"}
    with (
        started("notify", notify_env(infra, **smtp)) as notify,
        started("intake", infra.env(REE_NOTIFY_URL=notify.url)) as intake,
        started("review", infra.env()) as review,
    ):
        yield {"intake": intake, "review": review, "notify": notify}


def test_a_new_company_s_first_day_from_the_invitation_to_the_decision(
    browser: Any, infra: Infra, first_day: dict[str, ServiceProcess], inbox: tuple[Inbox, int]
) -> None:
    if not AXE.exists():
        pytest.skip("axe-core is not installed: `make specs` installs it into .cache/npm")
    intake, review = first_day["intake"], first_day["review"]
    mailbox, _port = inbox
    officials = enrol_officials(infra)
    eori = "DE" + uuid.uuid4().hex[:12].upper()
    company = operator(
        infra, "company", "create", "--name", "First Day Magnets GmbH", "--eori", eori
    )
    email = f"anna.{uuid.uuid4().hex[:8]}@first-day.example"
    invited = operator(
        infra, "company", "invite", "--company", company["id"], "--email", email,
        "--name", "Anna Admin",
    )  # fmt: skip
    token = parse_qs(urlsplit(invited["link"]).query)["token"][0]
    # bypass_csp: axe is added as an inline script, which the pages' CSP rightly refuses.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()

    # The invitation: a password (twice), the second factor left aside.
    page.goto(f"{intake.url}/invitation?token={token}")
    accessible(page, "first-day-invitation")
    docs_shot(page, "portal-first-day-invitation")
    page.fill("#password", PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.click("main form[action='/invitation'] button[type=submit]")
    page.wait_for_url(re.compile(r"/sign-in\?notice=welcome$"))
    accessible(page, "first-day-sign-in")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{intake.url}/")
    assert page.locator("text=Anna Admin").count() == 1
    accessible(page, "first-day-no-applications")

    # The e-mails Anna gets: "information requested" among them, as notify's default.
    page.click("nav.mainnav a[href='/me/emails']")
    page.wait_for_url(f"{intake.url}/me/emails")
    asked_type = "input[name=event_types][value='application.information_requested']"
    assert page.is_checked(asked_type)
    accessible(page, "first-day-emails")

    # The first application, with the form.
    page.click("nav.mainnav a[href='/apply']")
    page.wait_for_url(f"{intake.url}/apply")
    number = f"MOFCOM-2026-{uuid.uuid4().hex[:10].upper()}"
    page.fill("#f-mofcom_application_number", number)
    for field, value in TYPED.items():
        page.fill(f"#{field}", value)
    for field, value in CHOSEN.items():
        page.select_option(f"#{field}", value)
    accessible(page, "first-day-apply")
    page.click("main form button[type=submit]:not([name])")
    page.wait_for_url(re.compile(r"/applications/[^/?]+"))
    assert number in page.inner_text("main")
    application_id = page.url.split("/applications/")[1].split("?")[0]
    reference = page.inner_text("h1").strip()

    # A document: the end-user statement.
    statement = ARTIFACTS / "first-day-end-user-statement.pdf"
    statement.write_bytes(PDF)
    page.set_input_files("#file", str(statement))
    page.select_option("#kind", "end_user_statement")
    page.click("main form[enctype] button[type=submit]")
    page.wait_for_url(re.compile(r"notice=uploaded"))
    assert page.locator("text=first-day-end-user-statement.pdf").count() >= 1
    accessible(page, "first-day-uploaded")
    docs_shot(page, "portal-first-day-uploaded")

    # An EU officer asks for information; the e-mail says so.
    case = opened(review, officials["eu_officer"]["token"], reference)
    question = "Who is the end user, and where is the plant?"
    asked = act(review, officials["eu_officer"]["token"], case, "request_information",
                question=question)  # fmt: skip
    assert asked.status_code == 200, asked.text
    subject = f"Application {reference}: information requested"
    [mail] = wait_until(
        lambda: [m for m in mailbox.to(email) if m["Subject"] == subject],
        timeout=30,
        what="the e-mail that information is requested",
    )
    html = mail.get_body(("html",))
    assert html is not None and question in str(html.get_content())
    mail_page = context.new_page()
    mail_page.set_viewport_size({"width": 640, "height": 260})
    mail_page.set_content(str(html.get_content()))
    docs_shot(mail_page, "portal-first-day-email")
    mail_page.close()

    # Anna answers in the portal, with the statement.
    def request_shown() -> bool:
        page.goto(f"{intake.url}/applications/{application_id}")
        return page.locator("textarea[name=answer]").count() == 1

    wait_until(request_shown, timeout=30, what="the request on the application's page")
    assert question in page.inner_text("main")
    accessible(page, "first-day-information-requested")
    docs_shot(page, "portal-first-day-information-requested")
    page.fill("textarea[name=answer]", "Our plant in Gothenburg builds the motors.")
    page.check("input[name=document_ids]")
    page.click("main form[action$='/answer'] button[type=submit]")
    page.wait_for_url(re.compile(r"notice=answered"))
    accessible(page, "first-day-answered")

    # The officials decide: admitted, listed for China, acknowledged and approved there.
    def screening_again() -> bool:
        with review.client(officials["eu_officer"]["token"]) as c:
            return bool(c.get(f"/v1/cases/{case['id']}").json()["state"] == "eu_screening")

    wait_until(screening_again, timeout=30, what="the answer back in EU screening")
    assert act(review, officials["eu_officer"]["token"], case, "admit").status_code == 200
    with review.client(officials["eu_supervisor"]["token"]) as c:
        listed = c.post("/v1/priority-lists", json={"case_ids": [case["id"]]})
        assert listed.status_code == 201, listed.text
    cn = officials["cn_officer"]["token"]
    today = date.today().isoformat()
    acknowledged = act(review, cn, case, "acknowledge", accepted_on=today)
    assert acknowledged.status_code == 200, acknowledged.text
    licence = {"type": "three_month", "number": f"LIC-{reference}", "valid_from": today}
    approved = act(review, cn, case, "approve", licence=licence)
    assert approved.status_code == 200, approved.text

    def decision_shown() -> bool:
        page.goto(f"{intake.url}/applications/{application_id}")
        return f"LIC-{reference}" in page.inner_text("main")

    wait_until(decision_shown, timeout=30, what="the decision on the application's page")
    assert "Approved" in page.inner_text("main")
    accessible(page, "first-day-decided")
    docs_shot(page, "portal-first-day-decided")
    context.close()
