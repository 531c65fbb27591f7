"""Review against concurrency and extreme input, over real HTTP (red-team issue 17).

F12: concurrent writers of one case; F13: shipments on revoked licences and odd dates;
F14: the acceptance date and a second acknowledgement; F15: extreme values; F20: a point of
contact whose credentials are revoked, and the console's sign-in nonce.
"""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.test_review_flow import act, case_of, submit, token
from tests.people import console, form_nonce, sign_in_form
from tests.support import Infra, ServiceProcess, operator

Officials = dict[str, dict[str, Any]]


def _in_cn_review(
    intake: ServiceProcess, review: ServiceProcess, officials: Officials, company: dict[str, Any]
) -> dict[str, Any]:
    """A fresh case, admitted and sent to China on a list of its own."""
    app = submit(intake, company)
    case = case_of(review, officials, app["reference"])
    assert act(review, token(officials, "eu_officer"), case, "admit").status_code == 200
    with review.client(token(officials, "eu_supervisor")) as c:
        listed = c.post("/v1/priority-lists", json={"case_ids": [case["id"]]})
    assert listed.status_code == 201, listed.text
    return case


def _approved(
    intake: ServiceProcess, review: ServiceProcess, officials: Officials, company: dict[str, Any]
) -> str:
    case = _in_cn_review(intake, review, officials, company)
    cn = token(officials, "cn_officer")
    today = date.today().isoformat()
    assert act(review, cn, case, "acknowledge", accepted_on=today).status_code == 200
    number = f"LIC-H-{case['reference']}"
    approved = act(
        review,
        cn,
        case,
        "approve",
        licence={"type": "three_month", "number": number, "valid_from": today},
    )
    assert approved.status_code == 200, approved.text
    return number


# --- F12 ----------------------------------------------------------------------------------


def test_concurrent_notes_assignments_and_an_action_all_succeed_and_the_chain_stays_linear(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: Officials,
    company_a: dict[str, Any],
) -> None:
    app = submit(intake, company_a)
    case = case_of(review, officials, app["reference"])
    writers = 12
    barrier = threading.Barrier(writers)
    answers: list[tuple[str, httpx.Response]] = []
    lock = threading.Lock()

    def write(index: int) -> None:
        kind = "admit" if index == 0 else ("assign" if index % 3 == 0 else "note")
        who = "eu_supervisor" if kind == "assign" else "eu_officer"
        with review.client(token(officials, who)) as c:
            barrier.wait()
            if kind == "note":
                r = c.post(
                    f"/v1/cases/{case['id']}/notes",
                    json={"text": f"note {index}", "visibility": "side"},
                )
            elif kind == "assign":
                target = officials["eu_officer" if index % 2 else "eu_supervisor"]["id"]
                r = c.post(f"/v1/cases/{case['id']}/assign", json={"official_id": target})
            else:
                r = c.post(
                    f"/v1/cases/{case['id']}/actions",
                    json={"action": "admit"},
                    headers={"If-Match": str(case["version"])},
                )
        with lock:
            answers.append((kind, r))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted((kind, r.status_code) for kind, r in answers)
    assert all(s < 300 for _kind, s in statuses), statuses
    notes = {r.json()["id"] for kind, r in answers if kind == "note"}
    with review.client(token(officials, "eu_officer")) as c:
        audit = c.get(f"/v1/cases/{case['id']}/audit").json()["entries"]
        verified = c.get(f"/v1/cases/{case['id']}/audit/verify").json()
    noted = [e["payload"]["note_id"] for e in audit if e["action"] == "note_added"]
    assert sorted(noted) == sorted(notes), "every saved note is in the audit, once"
    assert [e["seq"] for e in audit] == list(range(1, len(audit) + 1))
    assert sum(e["action"] == "admit" for e in audit) == 1
    assert verified["ok"] is True, verified


# --- F13 ----------------------------------------------------------------------------------


def test_a_revoked_licence_takes_no_back_dated_shipment_and_no_date_is_in_the_future(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: Officials,
    company_a: dict[str, Any],
) -> None:
    number = _approved(intake, review, officials, company_a)
    today = date.today()

    def ship(on: date) -> httpx.Response:
        with review.client(token(officials, "cn_officer")) as c:
            return c.post(
                f"/v1/licences/{number}/shipments",
                json={"shipped_on": on.isoformat(), "lines": [{"line": 1, "quantity_kg": 1}]},
            )

    future = ship(today + timedelta(days=900))
    tomorrow_but_one = ship(today + timedelta(days=2))
    before_validity = ship(today - timedelta(days=1))
    assert future.status_code == 422, future.text
    assert future.json()["errors"][0]["field"] == "shipped_on"
    assert tomorrow_but_one.status_code == 422, tomorrow_but_one.text
    assert before_validity.status_code == 409, before_validity.text
    assert ship(today).status_code == 201
    with review.client(token(officials, "cn_supervisor")) as c:
        assert c.post(f"/v1/licences/{number}/revoke", json={"reason": "diversion"}).is_success
    back_dated = ship(today - timedelta(days=1))
    same_day = ship(today)
    assert back_dated.status_code in (409, 422), back_dated.text
    assert same_day.status_code == 409, same_day.text
    assert "revoked" in same_day.json()["detail"]
    with review.client(token(officials, "cn_officer")) as c:
        licence = c.get(f"/v1/licences/{number}").json()
    assert len(licence["shipments"]) == 1, "only the shipment before the revocation is stored"


# --- F14 ----------------------------------------------------------------------------------


def test_acknowledge_takes_no_date_before_submission_nor_after_today_and_only_once(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: Officials,
    company_a: dict[str, Any],
) -> None:
    case = _in_cn_review(intake, review, officials, company_a)
    cn = token(officials, "cn_officer")
    for accepted_on in ("0001-01-01", (date.today() - timedelta(days=30)).isoformat()):
        refused = act(review, cn, case, "acknowledge", accepted_on=accepted_on)
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["accepted_on"]
    future = act(review, cn, case, "acknowledge", accepted_on="9999-12-31")
    assert future.status_code == 422 and future.json()["errors"][0]["field"] == "accepted_on"
    first = act(review, cn, case, "acknowledge", accepted_on=date.today().isoformat())
    assert first.status_code == 200, first.text
    assert "acknowledge" not in first.json()["allowed_actions"]
    due = first.json()["deadlines"]
    again = act(review, cn, case, "acknowledge", accepted_on=date.today().isoformat())
    assert again.status_code == 409, again.text
    with review.client(cn) as c:
        after = c.get(f"/v1/cases/{case['id']}").json()
    assert after["deadlines"] == due
    assert [e["action"] for e in after["history"]].count("acknowledge") == 1


# --- F15 ----------------------------------------------------------------------------------


# Beyond INTEGER, plain and quoted; a superscript two and an Arabic-Indic one (isdigit takes both).
@pytest.mark.parametrize("if_match", ["1" * 23, '"99999999999"', "\u00b2", "\u0661", "-1", ""])
def test_an_extreme_or_odd_if_match_is_refused_as_bad_input_never_500(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: Officials,
    company_a: dict[str, Any],
    if_match: str,
) -> None:
    app = submit(intake, company_a)
    case = case_of(review, officials, app["reference"])
    with review.client(token(officials, "eu_officer")) as c:
        r = c.post(
            f"/v1/cases/{case['id']}/actions",
            json={"action": "admit"},
            # Bytes: httpx encodes str headers as ASCII; a browser or proxy may send UTF-8.
            headers={"If-Match": if_match.encode()},
        )
        after = c.get(f"/v1/cases/{case['id']}").json()
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert after["state"] == case["state"] and after["version"] == case["version"]


@pytest.mark.parametrize(
    "valid_from", ["9999-12-01", "0001-01-01", (date.today() + timedelta(days=400)).isoformat()]
)
def test_a_licence_valid_from_outside_a_year_of_today_is_refused(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: Officials,
    company_a: dict[str, Any],
    valid_from: str,
) -> None:
    case = _in_cn_review(intake, review, officials, company_a)
    cn = token(officials, "cn_officer")
    assert act(review, cn, case, "acknowledge", accepted_on=date.today().isoformat()).is_success
    r = act(
        review,
        cn,
        case,
        "approve",
        licence={
            "type": "three_month",
            "number": f"LIC-X-{case['reference']}",
            "valid_from": valid_from,
        },
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["licence.valid_from"]
    with review.client(cn) as c:
        assert c.get(f"/v1/cases/{case['id']}").json()["state"] == "cn_review"


def _signed_in_console(review: ServiceProcess, officials: Officials) -> httpx.Client:
    return console(review.url, officials["eu_officer"])


@pytest.mark.parametrize(
    ("start", "end"),
    [("2020-01-01", "9999-12-31"), ("0001-01-01", "2020-01-31"), ("2019-12-31", "2020-01-31")],
)
def test_the_console_dashboard_refuses_dates_out_of_range_without_500(
    review: ServiceProcess, officials: Officials, start: str, end: str
) -> None:
    console = _signed_in_console(review, officials)
    try:
        page = console.get("/dashboard", params={"from": start, "to": end})
        csv = console.get("/dashboard.csv", params={"from": start, "to": end})
    finally:
        console.close()
    assert page.status_code == 200, page.text[:500]
    assert "must be from 2020-01-01" in page.text, "the page says what is wrong"
    assert csv.status_code == 422, csv.text[:500]
    assert "must be from 2020-01-01" in csv.text


# --- F20 ----------------------------------------------------------------------------------


def test_an_official_whose_credentials_are_all_revoked_is_not_made_a_point_of_contact(
    infra: Infra,
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: Officials,
    company_a: dict[str, Any],
) -> None:
    gone = operator(
        infra, "official", "create", "--name", "Gone officer", "--side", "EU", "--role", "officer"
    )
    operator(infra, "credential", "revoke", gone["id"])
    app = submit(intake, company_a)
    case = case_of(review, officials, app["reference"])
    with review.client(token(officials, "eu_supervisor")) as c:
        r = c.post(f"/v1/cases/{case['id']}/assign", json={"official_id": gone["id"]})
        after = c.get(f"/v1/cases/{case['id']}").json()
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "official_id"
    assert (after["points_of_contact"].get("EU") or {}).get("id") != gone["id"]
    assert "assigned" not in [e["action"] for e in after["history"]]


def test_a_failed_sign_in_reissues_a_nonce_on_the_sign_in_path_and_the_next_one_succeeds(
    review: ServiceProcess, officials: Officials
) -> None:
    official = officials["cn_officer"]
    with httpx.Client(base_url=review.url, timeout=20) as browser:
        page = browser.get("/sign-in")
        wrong = {**sign_in_form(official, form_nonce(page), "000000"), "password": "not it"}
        failed = browser.post("/sign-in", data=wrong)
        assert failed.status_code == 403
        cookie = failed.headers["set-cookie"]
        assert "Path=/sign-in" in cookie, cookie
        good = browser.post("/sign-in", data=sign_in_form(official, form_nonce(failed)))
        assert good.status_code == 303, good.text[:500]
    with httpx.Client(base_url=review.url, timeout=20) as stale:
        # A form left open too long (no nonce cookie any more): refused, with a fresh nonce.
        expired = stale.post("/sign-in", data=sign_in_form(official, "old", code="000000"))
        assert expired.status_code == 403
        assert "Path=/sign-in" in expired.headers["set-cookie"]
        retry = stale.post("/sign-in", data=sign_in_form(official, form_nonce(expired)))
        assert retry.status_code == 303, retry.text[:500]
