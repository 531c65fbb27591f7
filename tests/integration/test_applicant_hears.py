"""What the applicant must hear, end to end: intake, review and notify as real processes on
real Redis streams, webhooks at a real receiver (issue 18, item 7)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlmodel import Session

from tests.integration.conftest import new_company
from tests.integration.notify_support import (
    Mailbox,
    Received,
    Receiver,
    notify_env,
    register,
    running_receiver,
    wait_for,
)
from tests.integration.test_review_flow import act, applicant_view, case_of, submit, token
from tests.integration.test_review_protocol import casework_for
from tests.support import Infra, ServiceProcess, wait_until


@pytest.fixture(scope="module")
def notify(infra: Infra) -> Iterator[ServiceProcess]:
    service = ServiceProcess("notify", notify_env(infra)).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture
def company(infra: Infra) -> dict[str, Any]:
    return new_company(infra, "Iota Magnets GmbH")


@pytest.fixture
def mailbox(notify: ServiceProcess, receiver: Receiver, company: dict[str, Any]) -> Mailbox:
    box = receiver.mailbox()
    with notify.client(company["api_key"]) as client:
        register(client, box)
    return box


def webhook(box: Mailbox, application_id: str, webhook_type: str, **has: Any) -> Received:
    """The first verified webhook of this type about the application whose data has `has`."""

    def found() -> Received | None:
        for r in box.successes():
            data = r.json["data"]
            if (
                r.verified
                and r.json["type"] == webhook_type
                and data["application_id"] == application_id
                and all(key in data for key in has)
            ):
                return r
        return None

    return wait_for(found, f"{webhook_type} webhook of {application_id}")


def timeline_entry(
    intake: ServiceProcess, company: dict[str, Any], app_id: str, entry_type: str
) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        view = applicant_view(intake, company, app_id)
        return next((t for t in view["timeline"] if t["type"] == entry_type), None)

    return wait_until(found, timeout=20, what=f"{entry_type} in the applicant's timeline")


def in_cn_review(
    intake: ServiceProcess, review: ServiceProcess, officials: dict[str, Any], app: dict[str, Any]
) -> dict[str, Any]:
    case = case_of(review, officials, app["reference"])
    assert act(review, token(officials, "eu_officer"), case, "admit").status_code == 200
    with review.client(token(officials, "eu_supervisor")) as c:
        assert c.post("/v1/priority-lists", json={"case_ids": [case["id"]]}).status_code == 201
    return case


def test_the_acknowledgement_tells_the_applicant_the_statutory_and_expected_dates(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company: dict[str, Any],
    mailbox: Mailbox,
) -> None:
    app = submit(intake, company)
    case = in_cn_review(intake, review, officials, app)
    accepted_on = date.today().isoformat()
    acknowledged = act(
        review, token(officials, "cn_officer"), case, "acknowledge", accepted_on=accepted_on
    )
    assert acknowledged.status_code == 200, acknowledged.text
    statutory_due = acknowledged.json()["deadlines"]["statutory_due"]
    expected = acknowledged.json()["expected_decision_date"]
    assert statutory_due and expected

    sent = webhook(mailbox, app["id"], "application.status_changed", accepted_on=True).json["data"]
    assert sent == {
        "application_id": app["id"],
        "reference": app["reference"],
        "previous_status": "cn_review",
        "status": "cn_review",
        "accepted_on": accepted_on,
        "statutory_due_date": statutory_due,
        "expected_decision_date": expected,
    }
    entry = timeline_entry(intake, company, app["id"], "application.acknowledged")
    assert entry["detail"]["statutory_due_date"] == statutory_due
    assert applicant_view(intake, company, app["id"])["expected_decision_date"] == expected


def test_a_licence_revoked_by_china_shows_revoked_at_intake_and_sends_a_webhook(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company: dict[str, Any],
    mailbox: Mailbox,
) -> None:
    app = submit(intake, company)
    case = in_cn_review(intake, review, officials, app)
    cn = token(officials, "cn_officer")
    assert act(review, cn, case, "acknowledge", accepted_on=date.today().isoformat()).is_success
    number = f"LIC-R-{app['reference']}"
    approved = act(
        review,
        cn,
        case,
        "approve",
        licence={
            "type": "three_month",
            "number": number,
            "valid_from": date.today().isoformat(),
            "lines": [{"line": 1, "approved_quantity_kg": 100}],
        },
    )
    assert approved.status_code == 200, approved.text
    issued = wait_until(
        lambda: (v := applicant_view(intake, company, app["id"]))["licence"] and v, timeout=20
    )
    assert issued["licence"]["status"] == "active"

    reason = "Diversion to a listed entity found by customs"
    with review.client(token(officials, "cn_supervisor")) as c:
        revoked = c.post(f"/v1/licences/{number}/revoke", json={"reason": reason})
    assert revoked.status_code == 200, revoked.text

    view = wait_until(
        lambda: (
            (v := applicant_view(intake, company, app["id"]))["licence"]["status"] == "revoked"
            and v
        ),
        timeout=20,
        what="the applicant sees the licence revoked",
    )
    assert view["licence"]["number"] == number
    assert view["licence"]["revoked_on"] == date.today().isoformat()
    assert "licence.revoked" in [t["type"] for t in view["timeline"]]
    sent = webhook(mailbox, app["id"], "licence.revoked")
    assert sent.json["data"]["licence"] == {
        "number": number,
        "status": "revoked",
        "revoked_on": date.today().isoformat(),
    }
    for hidden in (sent.body.decode(), json.dumps(view)):
        assert "Diversion" not in hidden, "China's reason is for the case file only"


def test_the_day_seven_reminder_reaches_the_applicant(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company: dict[str, Any],
    mailbox: Mailbox,
    infra: Infra,
) -> None:
    app = submit(intake, company)
    case = case_of(review, officials, app["reference"])
    question = "Please send the end-user statement."
    asked = act(
        review, token(officials, "eu_officer"), case, "request_information", question=question
    )
    assert asked.status_code == 200, asked.text
    request = asked.json()["information_requests"][0]
    reminder_day = date.fromisoformat(asked.json()["deadlines"]["reminder_due"])
    casework, engine = casework_for(infra)
    with Session(engine) as session:
        assert casework.check_deadlines(session, today=reminder_day) >= 1
        session.commit()

    sent = webhook(mailbox, app["id"], "application.information_reminder").json["data"]
    assert sent == {
        "application_id": app["id"],
        "reference": app["reference"],
        "request": {"id": request["id"], "question": question, "due": request["due"]},
    }
    entry = timeline_entry(intake, company, app["id"], "application.information_reminder")
    assert entry["detail"] == {"request_id": request["id"], "due": request["due"]}
