"""The console's forms are checked by the API's request models, over real HTTP (issue 16, 3).

A form the API would refuse with a 422 is refused by the console too, and nothing is stored:
the "at most N" of a priority list and a note's text and visibility are read with the same
models (services/review/api/bodies.py) as `POST /v1/priority-lists` and `POST …/notes`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.test_review_flow import act, case_of, submit, token
from tests.people import console, form_nonce
from tests.support import ServiceProcess

Officials = dict[str, dict[str, Any]]


_csrf = form_nonce


@contextmanager
def _console(review: ServiceProcess, officials: Officials, who: str) -> Iterator[httpx.Client]:
    """A browser's session: signed in through the sign-in form, its cookie kept."""
    with console(review.url, officials[who]) as client:
        yield client


def _queued(
    intake: ServiceProcess, review: ServiceProcess, officials: Officials, company: dict[str, Any]
) -> dict[str, Any]:
    case = case_of(review, officials, submit(intake, company)["reference"])
    assert act(review, token(officials, "eu_officer"), case, "admit").status_code == 200
    return case


@pytest.mark.parametrize("at_most", ["0", "5001", "ten"])
def test_a_list_the_api_would_refuse_is_refused_by_the_console_and_nothing_is_sent(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: Officials,
    company_a: dict[str, Any],
    at_most: str,
) -> None:
    case = _queued(intake, review, officials, company_a)
    with review.client(token(officials, "eu_supervisor")) as api:
        refused = api.post(
            "/v1/priority-lists", json={"case_ids": [case["id"]], "max_cases": at_most}
        )
        assert refused.status_code == 422, refused.text
        lists_before = api.get("/v1/priority-lists").json()["items"]
    with _console(review, officials, "eu_supervisor") as console:
        page = console.get("/priority-lists")
        posted = console.post(
            "/priority-lists",
            data={"csrf": _csrf(page), "case_id": case["id"], "max_cases": at_most},
        )
    assert posted.status_code == 422, posted.text[:500]
    assert "max_cases" in posted.text
    with review.client(token(officials, "eu_supervisor")) as api:
        assert api.get(f"/v1/cases/{case['id']}").json()["state"] == "queued"
        assert api.get("/v1/priority-lists").json()["items"] == lists_before


def test_the_console_issues_the_list_the_form_asks_for(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: Officials,
    company_a: dict[str, Any],
) -> None:
    case = _queued(intake, review, officials, company_a)
    with _console(review, officials, "eu_supervisor") as console:
        page = console.get("/priority-lists")
        posted = console.post(
            "/priority-lists", data={"csrf": _csrf(page), "case_id": case["id"], "max_cases": ""}
        )
    assert posted.status_code == 303, posted.text[:500]
    number = int(posted.headers["location"].rsplit("=", 1)[1])
    with review.client(token(officials, "eu_supervisor")) as api:
        listed = api.get(f"/v1/priority-lists/{number}").json()
    assert [c["case_id"] for c in listed["cases"]] == [case["id"]]


@pytest.mark.parametrize(
    "note", [{"text": " ", "visibility": "side"}, {"text": "x", "visibility": "everyone"}]
)
def test_a_note_the_api_would_refuse_is_refused_by_the_console_and_not_stored(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: Officials,
    company_a: dict[str, Any],
    note: dict[str, str],
) -> None:
    case = case_of(review, officials, submit(intake, company_a)["reference"])
    with _console(review, officials, "eu_officer") as console:
        page = console.get(f"/cases/{case['id']}")
        posted = console.post(f"/cases/{case['id']}/notes", data={"csrf": _csrf(page), **note})
    assert posted.status_code == 422, posted.text[:500]
    with review.client(token(officials, "eu_officer")) as api:
        assert api.get(f"/v1/cases/{case['id']}").json()["notes"] == []


# --- safe decisions (issue 18, items 4, 6 and 8) -----------------------------------------------


def _select(page: httpx.Response, field_id: str) -> list[tuple[str, bool]]:
    """The options of a select: (value, selected)."""
    found = re.search(rf'<select id="{field_id}"[^>]*>(.*?)</select>', page.text, re.S)
    assert found is not None, f"no select {field_id}"
    return [
        (value, bool(selected.strip()))
        for value, selected in re.findall(r'<option value="([^"]*)" ?(selected)?', found.group(1))
    ]


def _in_cn_review(
    intake: ServiceProcess, review: ServiceProcess, officials: Officials, company: dict[str, Any]
) -> dict[str, Any]:
    case = _queued(intake, review, officials, company)
    with review.client(token(officials, "eu_supervisor")) as api:
        assert api.post("/v1/priority-lists", json={"case_ids": [case["id"]]}).status_code == 201
    return case


def _post_action(
    console: httpx.Client, case_id: str, **fields: str
) -> tuple[httpx.Response, httpx.Response]:
    page = console.get(f"/cases/{case_id}")
    version = re.search(r'name="version" value="(\d+)"', page.text)
    assert version is not None
    data = {"csrf": _csrf(page), "version": version.group(1), **fields}
    return page, console.post(f"/cases/{case_id}/actions", data=data)


def test_the_decline_form_chooses_no_reason_and_one_sent_without_is_refused(
    intake: ServiceProcess, review: ServiceProcess, officials: Officials, company_a: dict[str, Any]
) -> None:
    case = case_of(review, officials, submit(intake, company_a)["reference"])
    with _console(review, officials, "eu_officer") as console:
        page, posted = _post_action(console, case["id"], action="decline", reason="")
    options = _select(page, "f-decline-reason")
    assert options[0][0] == "" and [v for v, chosen in options if chosen] == [""]
    assert ">Choose a reason</option>" in page.text
    assert "Propose: decline" in page.text, "the form says it only proposes"
    assert posted.status_code == 422, posted.text[:500]
    assert "reason: is required" in posted.text
    with review.client(token(officials, "eu_officer")) as api:
        after = api.get(f"/v1/cases/{case['id']}").json()
    assert after["state"] == "eu_screening" and after["proposals"] == []


def test_the_refuse_and_approve_forms_prefill_no_reason_and_no_licence_number(
    intake: ServiceProcess, review: ServiceProcess, officials: Officials, company_a: dict[str, Any]
) -> None:
    case = _in_cn_review(intake, review, officials, company_a)
    with _console(review, officials, "cn_officer") as console:
        page = console.get(f"/cases/{case['id']}")
    assert [v for v, chosen in _select(page, "f-refuse-reason") if chosen] == [""]
    number = re.search(r'<input id="f-approve-licence-number"[^>]*>', page.text)
    assert number is not None and 'value=""' in number.group(0), number
    assert case["reference"] not in number.group(0)
    assert 'name="meeting.' not in page.text, "no meeting is asked outside joint review"


def test_the_console_acknowledges_once_and_offers_no_second_acknowledgement(
    intake: ServiceProcess, review: ServiceProcess, officials: Officials, company_a: dict[str, Any]
) -> None:
    case = _in_cn_review(intake, review, officials, company_a)
    today = date.today()
    with _console(review, officials, "cn_officer") as console:
        page, done = _post_action(
            console, case["id"], action="acknowledge", accepted_on=today.isoformat()
        )
        assert "data-action='acknowledge'" in page.text.replace('"', "'")
        assert done.status_code == 303, done.text[:500]
        after = console.get(f"/cases/{case['id']}")
        assert "data-action='acknowledge'" not in after.text.replace('"', "'")
        statutory = _statutory(review, officials, case)
        _, again = _post_action(
            console,
            case["id"],
            action="acknowledge",
            accepted_on=(today - timedelta(days=3)).isoformat(),
        )
    assert again.status_code == 409, again.text[:500]
    assert "taken once" in again.text
    assert _statutory(review, officials, case) == statutory


def _statutory(review: ServiceProcess, officials: Officials, case: dict[str, Any]) -> str:
    with review.client(token(officials, "cn_officer")) as api:
        return str(api.get(f"/v1/cases/{case['id']}").json()["deadlines"]["statutory_due"])


def test_a_refusal_proposed_in_the_console_is_countersigned_there_by_a_supervisor(
    intake: ServiceProcess, review: ServiceProcess, officials: Officials, company_a: dict[str, Any]
) -> None:
    case = _in_cn_review(intake, review, officials, company_a)
    with _console(review, officials, "cn_officer") as console:
        _, proposed = _post_action(console, case["id"], action="refuse", reason="diversion_risk")
        assert proposed.status_code == 303 and proposed.headers["location"].endswith("proposed")
        page = console.get(proposed.headers["location"])
    assert "Awaiting countersignature" in page.text
    assert 'data-verb="countersign"' not in page.text, "not for its proposer"
    with _console(review, officials, "eu_supervisor") as console:
        assert "Awaiting countersignature" not in console.get(f"/cases/{case['id']}").text
    with _console(review, officials, "cn_supervisor") as console:
        page = console.get(f"/cases/{case['id']}")
        form = re.search(r'action="(/cases/[^"]+/countersign)"', page.text)
        assert form is not None, "the supervisor is offered the countersignature"
        version = re.search(r'name="version" value="(\d+)"', page.text)
        assert version is not None
        signed = console.post(
            form.group(1), data={"csrf": _csrf(page), "version": version.group(1)}
        )
    assert signed.status_code == 303, signed.text[:500]
    with review.client(token(officials, "eu_officer")) as api:
        decided = api.get(f"/v1/cases/{case['id']}").json()
    assert decided["state"] == "refused" and decided["proposals"] == []


def test_a_supervisor_assigns_the_case_to_another_official_of_the_side_in_the_console(
    intake: ServiceProcess, review: ServiceProcess, officials: Officials, company_a: dict[str, Any]
) -> None:
    case = case_of(review, officials, submit(intake, company_a)["reference"])
    officer = officials["eu_officer"]["id"]
    with _console(review, officials, "eu_officer") as console:
        assert 'name="official_id"' not in console.get(f"/cases/{case['id']}").text
    with _console(review, officials, "eu_supervisor") as console:
        page = console.get(f"/cases/{case['id']}")
        choices = [v for v, _s in _select(page, "assign-official")]
        assert officer in choices and officials["cn_officer"]["id"] not in choices
        given = console.post(
            f"/cases/{case['id']}/assign", data={"csrf": _csrf(page), "official_id": officer}
        )
        assert given.status_code == 303, given.text[:500]
        cross = console.post(
            f"/cases/{case['id']}/assign",
            data={"csrf": _csrf(page), "official_id": officials["cn_officer"]["id"]},
        )
    assert cross.status_code == 422
    with review.client(token(officials, "eu_supervisor")) as api:
        contact = api.get(f"/v1/cases/{case['id']}").json()["points_of_contact"]["EU"]
    assert contact["id"] == officer


def test_the_joint_meeting_is_recorded_from_the_console_with_participants_ticked(
    intake: ServiceProcess, review: ServiceProcess, officials: Officials, company_a: dict[str, Any]
) -> None:
    case = _in_cn_review(intake, review, officials, company_a)
    escalated = act(review, token(officials, "cn_supervisor"), case, "escalate", reason="stuck")
    assert escalated.status_code == 200, escalated.text
    eu_id, cn_id = officials["eu_officer"]["id"], officials["cn_supervisor"]["id"]
    with _console(review, officials, "cn_supervisor") as console:
        page = console.get(f"/cases/{case['id']}")
        boxes = dict(re.findall(r'name="(meeting\.participants\.\d+)" value="([^"]+)"', page.text))
        assert {eu_id, cn_id} <= set(boxes.values()), "officials of both sides to tick"
        ticked = {name: value for name, value in boxes.items() if value in (eu_id, cn_id)}
        fields = {
            "action": "return_to_review",
            "meeting.held_on": date.today().isoformat(),
            "meeting.outcome": "MOFCOM decides within ten days",
        }
        _, one_side = _post_action(
            console, case["id"], **fields, **{n: v for n, v in ticked.items() if v == cn_id}
        )
        assert one_side.status_code == 422 and "both sides" in one_side.text
        _, done = _post_action(console, case["id"], **fields, **ticked)
        assert done.status_code == 303, done.text[:500]
        shown = console.get(done.headers["location"]).text
    assert "Joint meetings" in shown and "MOFCOM decides within ten days" in shown
    with review.client(token(officials, "eu_officer")) as api:
        (meeting,) = api.get(f"/v1/cases/{case['id']}").json()["joint_meetings"]
    assert {p["id"] for p in meeting["participants"]} == {eu_id, cn_id}
