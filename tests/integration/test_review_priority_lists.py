"""Priority lists both sides can open: in list order, each case in the caller's side's view,
as JSON, as a CSV file, and as a console page (real HTTP, real database)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.review_support import Planted, act, opened, token
from tests.people import console
from tests.support import Infra, ServiceProcess

BOM = b"\xef\xbb\xbf"
FORMULA = '=HYPERLINK("http://evil.example/","open")'


@dataclass
class Listed:
    number: int
    cases: list[Planted]  # in list order: P1, P2, P3

    @property
    def ids(self) -> list[str]:
        return [c.case_id for c in self.cases]


@pytest.fixture(scope="module")
def listed(
    infra: Infra, intake: ServiceProcess, review: ServiceProcess, officials: dict[str, Any]
) -> Listed:
    """Three cases put on one list; submitted P3, P1, P2, so the list's order is its own."""
    low = Planted(infra, intake)
    high = Planted(infra, intake, exporter=f"包头稀土 {low.tag}")
    middle = Planted(infra, intake, exporter=FORMULA)
    submitted = [low, high, middle]
    for planted, tier in zip(submitted, ("P3", "P1", "P2"), strict=True):
        opened(review, officials, planted)
        act(review, token(officials, "eu_officer"), planted.case_id, "admit")
        act(
            review,
            token(officials, "eu_supervisor"),
            planted.case_id,
            "set_priority",
            tier=tier,
            reason="list order test",
        )
    with review.client(token(officials, "eu_supervisor")) as c:
        r = c.post("/v1/priority-lists", json={"case_ids": [p.case_id for p in submitted]})
    assert r.status_code == 201, r.text
    return Listed(int(r.json()["number"]), [high, middle, low])


def _get(review: ServiceProcess, who: str, officials: dict[str, Any], path: str) -> Any:
    with review.client(token(officials, who)) as c:
        r = c.get(path)
    assert r.status_code == 200, r.text
    return r


def _console(review: ServiceProcess, who: str, officials: dict[str, Any]) -> httpx.Client:
    """The console signed in as `who` through its form (e-mail, password and code)."""
    return console(review.url, officials[who])


@pytest.mark.parametrize("who", ["eu_officer", "cn_officer", "cn_supervisor"])
def test_a_list_shows_its_cases_in_list_order_each_as_the_side_sees_the_case(
    review: ServiceProcess, officials: dict[str, Any], listed: Listed, who: str
) -> None:
    view = _get(review, who, officials, f"/v1/priority-lists/{listed.number}").json()
    entries = view["cases"]
    assert [e["case_id"] for e in entries] == listed.ids
    assert [e["position"] for e in entries] == [1, 2, 3]
    assert [e["tier"] for e in entries] == ["P1", "P2", "P3"]
    assert [e["reference"] for e in entries] == [c.reference for c in listed.cases]
    for entry, planted in zip(entries, listed.cases, strict=True):
        case = entry["case"]
        assert case["priority"]["list_number"] == listed.number
        assert case["priority"]["list_position"] == entry["position"]
        # The same application as the side's own view of the case: no more, no less.
        full = _get(review, who, officials, f"/v1/cases/{planted.case_id}").json()
        assert case["application"] == full["application"]
        assert ("applicant" in case) == ("applicant" in full)
    if who.startswith("cn"):
        text = str(entries)
        assert "applicant" not in entries[0]["case"] and "urgency" not in text
        assert "score" not in entries[0]["case"]["priority"]
        assert all(c.company_name not in text for c in listed.cases)
    else:
        assert [e["case"]["applicant"]["name"] for e in entries] == [
            c.company_name for c in listed.cases
        ]
        assert "urgency" in entries[0]["case"]["application"]


def _rows(answer: httpx.Response) -> list[list[str]]:
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.content.startswith(BOM), "UTF-8 with a BOM, for Excel"
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))


@pytest.mark.parametrize("where", ["api", "console"])
def test_the_list_as_csv_is_in_list_order_safe_to_open_and_each_side_s_own(
    review: ServiceProcess, officials: dict[str, Any], listed: Listed, where: str
) -> None:
    files = {}
    for who in ("eu_officer", "cn_officer"):
        if where == "api":
            answer = _get(review, who, officials, f"/v1/priority-lists/{listed.number}?format=csv")
        else:
            with _console(review, who, officials) as c:
                answer = c.get(f"/priority-lists/{listed.number}.csv")
            assert answer.status_code == 200, answer.text
        files[who] = (_rows(answer), answer.content.decode("utf-8-sig"))
    for who, (rows, text) in files.items():
        header, body = rows[0], rows[1:]
        assert [r[header.index("reference")] for r in body] == [c.reference for c in listed.cases]
        assert [r[header.index("position")] for r in body] == ["1", "2", "3"]
        exporters = [r[header.index("exporter")] for r in body]
        # The formula is text to a spreadsheet; the Chinese name arrives as written.
        assert exporters[1] == "'" + FORMULA, who
        assert exporters[0] == listed.cases[0].exporter
        assert [r[header.index("mofcom_application_number")] for r in body] == [
            c.mofcom for c in listed.cases
        ]
        if who == "eu_officer":
            assert [r[header.index("company")] for r in body] == [
                c.company_name for c in listed.cases
            ]
        else:
            assert "company" not in header
            assert all(c.company_name not in text for c in listed.cases)


def test_an_unknown_list_is_404_in_the_api_and_the_console(
    review: ServiceProcess, officials: dict[str, Any], listed: Listed
) -> None:
    with review.client(token(officials, "cn_officer")) as c:
        for path in ("/v1/priority-lists/2147483647", "/v1/priority-lists/2147483647?format=csv"):
            r = c.get(path)
            assert r.status_code == 404, path
            assert r.headers["content-type"].startswith("application/problem+json")
        assert c.get(f"/v1/priority-lists/{listed.number}?format=xml").status_code == 422
    with _console(review, "eu_officer", officials) as c:
        for path in ("/priority-lists/2147483647", "/priority-lists/2147483647.csv"):
            assert c.get(path).status_code == 404, path
        assert c.get("/priority-lists/seven").status_code == 404


def test_the_console_links_each_list_to_its_page_with_the_cases_in_order(
    review: ServiceProcess, officials: dict[str, Any], listed: Listed
) -> None:
    for who in ("eu_officer", "cn_officer"):
        with _console(review, who, officials) as c:
            lists = c.get("/priority-lists")
            page = c.get(f"/priority-lists/{listed.number}")
        assert f'href="/priority-lists/{listed.number}"' in lists.text
        assert page.status_code == 200
        where = [page.text.index(c.reference) for c in listed.cases]
        assert where == sorted(where), "the cases in list order"
        assert f'href="/priority-lists/{listed.number}.csv"' in page.text
        shows_company = [c.company_name in page.text for c in listed.cases]
        assert shows_company == [who == "eu_officer"] * 3
