"""The console's forms are checked by the API's request models, over real HTTP (issue 16, 3).

A form the API would refuse with a 422 is refused by the console too, and nothing is stored:
the "at most N" of a priority list and a note's text and visibility are read with the same
models (services/review/api/bodies.py) as `POST /v1/priority-lists` and `POST …/notes`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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
