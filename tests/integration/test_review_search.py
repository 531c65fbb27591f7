"""Searching the queue (`GET /v1/cases?q=`) over real HTTP, as each side may.

Every case here carries values no other test uses (a tag in its MOFCOM number, exporter,
USCC, HS code and company), so a search finds exactly these cases however many others the
session has opened. The company's name is planted as a sentinel: China may not see it, so
China must not find a case by it, while the EU does.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.integration.review_support import (
    Planted,
    found,
    opened,
    search,
    send_to_china,
    token,
)
from tests.people import console
from tests.support import Infra, ServiceProcess


@pytest.fixture(scope="module")
def sent(
    infra: Infra, intake: ServiceProcess, review: ServiceProcess, officials: dict[str, Any]
) -> Planted:
    """A planted case that the EU has sent to China."""
    planted = Planted(infra, intake)
    send_to_china(review, officials, [opened(review, officials, planted)])
    return planted


def _fields(planted: Planted) -> dict[str, str]:
    return {
        "reference": planted.reference,
        "MOFCOM number": planted.mofcom,
        "part of the MOFCOM number": planted.serial[2:8],
        "MOFCOM number in lower case": planted.mofcom.lower(),
        "exporter": planted.exporter,
        "part of the exporter's name": f"exporter {planted.tag}".lower(),
        "USCC": planted.uscc,
        "HS code": planted.hs_code,
        "company": planted.company_name,
    }


def test_the_eu_finds_a_case_by_each_searched_field_whole_or_in_part(
    review: ServiceProcess, officials: dict[str, Any], sent: Planted
) -> None:
    eu = token(officials, "eu_officer")
    for field, value in _fields(sent).items():
        assert found(review, eu, value) == [sent.case_id], field
        assert found(review, eu, f"  {value}  ") == [sent.case_id], f"{field}, untrimmed"


def test_china_finds_a_case_it_was_sent_by_every_field_it_may_see_but_not_by_the_company(
    review: ServiceProcess, officials: dict[str, Any], sent: Planted
) -> None:
    for who in ("cn_officer", "cn_supervisor"):
        cn = token(officials, who)
        fields = _fields(sent)
        company = fields.pop("company")
        for field, value in fields.items():
            assert found(review, cn, value) == [sent.case_id], (who, field)
        r = search(review, cn, company)
        assert r.status_code == 200
        assert r.json()["items"] == [] and r.json()["total"] == 0, who
        assert company not in r.text
    # The EU does find it by the company: the sentinel is real.
    assert found(review, token(officials, "eu_officer"), sent.company_name) == [sent.case_id]


def test_china_does_not_find_a_case_that_was_not_sent_to_it(
    infra: Infra, intake: ServiceProcess, review: ServiceProcess, officials: dict[str, Any]
) -> None:
    kept = Planted(infra, intake)
    opened(review, officials, kept)
    for value in (kept.mofcom, kept.reference, kept.exporter, kept.hs_code):
        assert found(review, token(officials, "eu_officer"), value) == [kept.case_id]
        assert found(review, token(officials, "cn_officer"), value) == []


def test_a_search_is_paged_like_the_queue_and_counted(
    infra: Infra, intake: ServiceProcess, review: ServiceProcess, officials: dict[str, Any]
) -> None:
    tag = uuid.uuid4().hex[:8].upper()
    cases = [Planted(infra, intake, tag) for _ in range(3)]
    for planted in cases:
        opened(review, officials, planted)
    eu = token(officials, "eu_officer")
    term = f"Sentinel Exporter {tag}"
    pages = [search(review, eu, term, limit=2, offset=offset).json() for offset in (0, 2)]
    assert [p["total"] for p in pages] == [3, 3]
    assert [len(p["items"]) for p in pages] == [2, 1]
    assert all(p["capped"] is False for p in pages)
    seen = [i["id"] for p in pages for i in p["items"]]
    assert sorted(seen) == sorted(p.case_id for p in cases)
    # Within the search, the queue's own order (tier, then deadline, then age).
    assert seen == found(review, eu, term)
    with_state = search(review, eu, term, state="eu_screening").json()
    assert with_state["total"] == 3


def test_like_wildcards_in_a_term_match_themselves_not_every_case(
    review: ServiceProcess, officials: dict[str, Any], sent: Planted
) -> None:
    eu = token(officials, "eu_officer")
    for term in ("%%", "__", "%_", "\\%"):
        r = search(review, eu, term)
        assert r.status_code == 200, r.text
        assert r.json()["total"] == 0, term


@pytest.mark.parametrize("q", ["", " ", "a", " a ", "x" * 101, "ab\u202ecd", "ab\x00cd"])
def test_a_term_too_short_too_long_or_unprintable_is_a_422_problem(
    review: ServiceProcess, officials: dict[str, Any], q: str
) -> None:
    r = search(review, token(officials, "eu_officer"), q)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == ["q"]


def test_the_console_search_box_uses_the_same_search(
    review: ServiceProcess, officials: dict[str, Any], sent: Planted
) -> None:
    def page(who: str, q: str) -> httpx.Response:
        with console(review.url, officials[who]) as c:  # signed in as a person does
            return c.get("/", params={"q": q, "show": "all"})

    for who in ("eu_officer", "cn_officer"):
        r = page(who, sent.serial[1:7])
        assert r.status_code == 200 and sent.reference in r.text, who
    assert sent.reference in page("eu_officer", sent.company_name).text
    assert sent.reference not in page("cn_officer", sent.company_name).text
    refused = page("eu_officer", "x")
    assert refused.status_code == 422
    assert 'id="q-error"' in refused.text and "2 to 100 characters" in refused.text
