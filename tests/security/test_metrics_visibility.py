"""China's metrics cover only what China may see (red-team finding F5, PROTOCOL.md visibility).

Two applications with goods and an end use no other case of the world has (thulium oxide
for data centres) are never sent to China: one stays in EU screening, one is declined
(`not_admitted`). The EU's summary counts them; China's summary, its CSV, every grouping
and the console's dashboard must not show them, nor any state or outcome China never
knows of, and China's backlog must agree with China's own queue.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest

from tests.integration.conftest import application
from tests.security.conftest import CONSOLE_COOKIE, World, _cases, decline

pytestmark = pytest.mark.slow

GROUPINGS = ("form", "element", "value_chain", "licence_type", "priority_list")
ELEMENT, CATEGORY = "Tm", "data_centres"
EU_ONLY_STATES = ("submitted", "eu_screening", "queued")


@pytest.fixture(scope="module")
def eu_only_cases(world: World) -> list[str]:
    with world.client("intake", "applicant_a") as c:
        apps = []
        for _ in range(2):
            body = application(
                end_use={"category": CATEGORY, "description": "cooling for a data centre"},
                goods=[
                    {"element": ELEMENT, "form": "oxide", "hs_code": "2846.90", "quantity_kg": 40}
                ],
            )
            r = c.post("/v1/applications", json=body)
            assert r.status_code == 201, r.text
            apps.append(r.json())
    cases = _cases(world, apps)
    decline(world, cases[1])
    return cases


def _summary(world: World, kind: str, **params: Any) -> httpx.Response:
    with world.client("review", kind) as c:
        r = c.get("/v1/metrics/summary", params=params)
    assert r.status_code == 200, r.text
    return r


def _groups(body: dict[str, Any]) -> set[str]:
    return {g["group"] for g in body["groups"]}


def test_the_eu_counts_the_cases_china_never_received(
    world: World, eu_only_cases: list[str]
) -> None:
    element = _summary(world, "eu_officer", group_by="element").json()
    chain = _summary(world, "eu_officer", group_by="value_chain").json()
    assert ELEMENT in _groups(element) and CATEGORY in _groups(chain)
    assert element["overall"]["outcomes"]["not_admitted"] >= 1
    assert element["backlog"]["by_state"]["eu_screening"] >= 1


@pytest.mark.parametrize("kind", ["cn_officer", "cn_supervisor"])
def test_china_s_summary_leaves_out_cases_never_sent_to_china(
    world: World, eu_only_cases: list[str], kind: str
) -> None:
    for group_by in GROUPINGS:
        body = _summary(world, kind, group_by=group_by).json()
        text = _summary(world, kind, group_by=group_by, format="csv").text
        assert ELEMENT not in _groups(body) and CATEGORY not in _groups(body), group_by
        rows = list(csv.reader(io.StringIO(text)))
        assert not {ELEMENT, CATEGORY} & {row[0] for row in rows}, group_by
        assert "not_admitted" not in rows[0] and "eu_screening_median_days" not in rows[0]
        assert "not_admitted" not in json.dumps(body), group_by
        assert not set(EU_ONLY_STATES) & set(body["backlog"]["by_state"]), group_by
        assert not set(EU_ONLY_STATES) & set(body["stages"]), group_by
        assert body["overall"]["submitted"] > 0, "China's figures are not simply empty"


def test_china_s_backlog_is_china_s_queue(world: World, eu_only_cases: list[str]) -> None:
    body = _summary(world, "cn_officer").json()
    with world.client("review", "cn_officer") as c:
        queue = {
            state: c.get("/v1/cases", params={"state": state, "limit": 1}).json()["total"]
            for state in body["backlog"]["by_state"]
        }
        everything = c.get("/v1/cases", params={"limit": 1}).json()["total"]
    assert body["backlog"]["by_state"] == queue
    assert body["overall"]["submitted"] == everything


def test_china_s_dashboard_leaves_out_cases_never_sent_to_china(
    world: World, eu_only_cases: list[str]
) -> None:
    session = world.sessions["cn_officer"]
    with httpx.Client(
        base_url=world.services["review"].url, cookies={CONSOLE_COOKIE: session}
    ) as c:
        pages = [
            c.get("/dashboard", params={"group_by": g}) for g in ("element", "value_chain")
        ] + [c.get("/dashboard.csv", params={"group_by": g}) for g in ("element", "value_chain")]
    for page in pages:
        assert page.status_code == 200, page.text[:300]
        assert f">{ELEMENT}<" not in page.text and f"{ELEMENT}," not in page.text
        assert CATEGORY not in page.text
        assert "not admitted" not in page.text and "EU screening" not in page.text
    eu = world.sessions["eu_officer"]
    with httpx.Client(base_url=world.services["review"].url, cookies={CONSOLE_COOKIE: eu}) as c:
        seen = c.get("/dashboard", params={"group_by": "value_chain"}).text
    assert CATEGORY in seen, "the EU's dashboard shows the group, so the scan sees real data"


@pytest.mark.parametrize("kind", ["cn_officer", "cn_supervisor"])
def test_china_s_commission_figures_and_monthly_report_leave_out_cases_never_sent(
    world: World, eu_only_cases: list[str], kind: str
) -> None:
    month = _summary(world, kind).json()["as_of"][:7]
    with world.client("review", kind) as c:
        figures = c.get("/v1/metrics/commission")
        figures_csv = c.get("/v1/metrics/commission", params={"format": "csv"})
        report = c.get(f"/v1/metrics/monthly/{month}")
        report_csv = c.get(f"/v1/metrics/monthly/{month}", params={"format": "csv"})
    for r in (figures, figures_csv, report, report_csv):
        assert r.status_code == 200, r.text
        assert not any(case_id in r.text for case_id in eu_only_cases)
        assert "not_admitted" not in r.text
    everything = _summary(world, kind).json()["overall"]["submitted"]
    assert figures.json()["approved_share"][-1]["filed"] == everything
    session = world.sessions[kind]
    with httpx.Client(
        base_url=world.services["review"].url, cookies={CONSOLE_COOKIE: session}
    ) as c:
        pages = [c.get("/reports/monthly"), c.get("/reports/monthly.csv")]
        pages.append(c.get("/dashboard/commission.csv"))
    for page in pages:
        assert page.status_code == 200, page.text[:300]
        assert not any(case_id in page.text for case_id in eu_only_cases)
        assert "not admitted" not in page.text.lower() and "EU screening" not in page.text
