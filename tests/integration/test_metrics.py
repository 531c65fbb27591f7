"""Metrics against a recount from the database, after `reechannel simulate` drove the services."""

from __future__ import annotations

import csv
import io
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.review.domain.calendar import working_days_between
from services.review.domain.protocol import Protocol
from shared.config import CommonSettings
from shared.db import make_engine
from tests.people import console
from tests.support import ROOT, Infra, ServiceProcess

TERMINAL = ("approved", "refused", "not_admitted", "withdrawn", "lapsed")
COMMERCIAL = ("urgency", "stock_days", "jobs_at_risk", "value_eur", "contract_value_eur", "eori")


@pytest.fixture(scope="module")
def simulated(
    infra: Infra, intake: ServiceProcess, review: ServiceProcess
) -> Iterator[dict[str, Any]]:
    """A small simulated past: most cases back-dated through Casework, the rest over HTTP."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "reechannel.cli",
            "simulate",
            "--count",
            "80",
            "--companies",
            "6",
            "--seed",
            "11",
            "--intake-url",
            intake.url,
            "--review-url",
            review.url,
        ],
        env=infra.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "history (back-dated)" in out.stderr, "a progress bar is shown"
    import json

    creds = json.loads((infra.data_dir / "simulate-credentials.json").read_text())
    officials = {f"{o['side']}_{o['role']}": o["token"] for o in creds["officials"]}
    yield officials


def _engine(infra: Infra) -> Any:
    env = infra.env()
    keys = ("DATABASE_URL", "REE_SCHEMA_PREFIX", "REE_DATA_DIR")
    return make_engine(CommonSettings(**{k: env[k] for k in keys if k in env}), "review")


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


def recount(infra: Infra, group_by: str, start: date | None = None, end: date | None = None):
    """The figures again, straight from the tables with plain SQL and the calendar module."""
    protocol = Protocol.load()
    engine = _engine(infra)
    with engine.connect() as conn:
        cases = conn.execute(text("SELECT id, state, application, list_number FROM cases")).all()
        entries = conn.execute(
            text(
                "SELECT case_id, at, from_state, to_state FROM audit_entries "
                "WHERE from_state <> to_state ORDER BY case_id, seq"
            )
        ).all()
    engine.dispose()
    by_case: dict[str, list[Any]] = defaultdict(list)
    for row in entries:
        by_case[row.case_id].append(row)
    groups: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"outcomes": defaultdict(int), "totals": [], "cn": []}
    )
    for case in cases:
        application = _json(case.application)
        if group_by == "form":
            keys = {g["form"] for g in application["goods"]}
        elif group_by == "value_chain":
            keys = {application["end_use"]["category"]}
        else:
            keys = {application["licence_type"]}
        moves = by_case[case.id]
        last = moves[-1]
        if last.to_state not in TERMINAL:
            continue
        decided = _aware(last.at).date()
        if (start and decided < start) or (end and decided > end):
            continue
        total = working_days_between("EU", _aware(moves[0].at).date(), decided)
        cn_days = [
            working_days_between("CN", _aware(a.at).date(), _aware(b.at).date())
            for a, b in pairwise(moves)
            if a.to_state == "cn_review"
        ]
        for key in [*keys, "(all)"]:
            figures = groups[key]
            figures["outcomes"][last.to_state] += 1
            figures["totals"].append(total)
            if cn_days:
                figures["cn"].append(sum(cn_days))
    assert protocol.calendar_side("cn_review") == "CN"
    return groups


def _p90(values: list[float]) -> float:
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def _check(figures: dict[str, Any], expected: dict[str, Any]) -> None:
    outcomes = expected["outcomes"]
    for outcome in TERMINAL:
        assert figures["outcomes"][outcome] == outcomes.get(outcome, 0), outcome
    decided = outcomes.get("approved", 0) + outcomes.get("refused", 0)
    rate = round(outcomes.get("approved", 0) / decided, 4) if decided else None
    assert figures["approval_rate"] == rate
    total = figures["processing_days"]["total"]
    assert total["cases"] == len(expected["totals"])
    if expected["totals"]:
        assert total["median"] == round(statistics.median(expected["totals"]), 1)
        assert total["p90"] == round(_p90(expected["totals"]), 1)
    cn = figures["processing_days"]["stages"]["cn_review"]
    assert cn["cases"] == len(expected["cn"])
    if expected["cn"]:
        assert cn["median"] == round(statistics.median(expected["cn"]), 1)


def _summary(review: ServiceProcess, credential: str, **params: str) -> httpx.Response:
    with review.client(credential) as c:
        return c.get("/v1/metrics/summary", params=params)


@pytest.mark.parametrize("group_by", ["form", "value_chain", "licence_type"])
def test_the_summary_matches_a_recount_from_the_database(
    infra: Infra, review: ServiceProcess, simulated: dict[str, str], group_by: str
) -> None:
    r = _summary(review, simulated["EU_supervisor"], group_by=group_by)
    assert r.status_code == 200, r.text
    body = r.json()
    expected = recount(infra, group_by)
    assert body["overall"]["decided"] >= 40, "the simulation decided most cases"
    _check(body["overall"], expected["(all)"])
    assert {g["group"] for g in body["groups"] if g["decided"]} == set(expected) - {"(all)"}
    for group in body["groups"]:
        if group["decided"]:
            _check(group, expected[group["group"]])


@pytest.mark.parametrize("group_by", ["form", "element", "priority_list"])
def test_the_whole_summary_equals_the_definition_computed_from_the_audit_trail(
    infra: Infra, review: ServiceProcess, simulated: dict[str, str], group_by: str
) -> None:
    """The service answers from aggregates kept case by case (docs/metrics.md); every figure
    must equal summary_from_audit, which recomputes them from all cases and audit entries."""
    from fastapi.encoders import jsonable_encoder
    from sqlmodel import Session

    from services.review.metrics.reports import Period
    from tests.metrics_oracle import stopping_before_decision_from_cases, summary_from_audit

    whole = _summary(review, simulated["EU_officer"], group_by=group_by).json()
    start = date.fromisoformat(whole["by_month"][1]["month"] + "-10")
    ranged = _summary(
        review, simulated["EU_officer"], group_by=group_by, **{"from": start.isoformat()}
    ).json()
    engine = _engine(infra)
    today = date.fromisoformat(whole["as_of"])
    with Session(engine) as session:
        for body, period in ((whole, Period()), (ranged, Period(start, None))):
            expected = summary_from_audit(session, Protocol.load(), today, group_by, period)
            # Not a figure of the period: the open cases as they stand (docs/review.md).
            expected["backlog"]["stopping_before_decision"] = stopping_before_decision_from_cases(
                session, Protocol.load()
            )
            assert body == jsonable_encoder(expected)
    engine.dispose()


def test_processing_times_are_realistic_after_the_simulation(
    review: ServiceProcess, simulated: dict[str, str]
) -> None:
    body = _summary(review, simulated["EU_officer"]).json()
    total = body["overall"]["processing_days"]["total"]
    assert total["median"] and total["median"] >= 5, "back-dated history takes working days"
    rate = body["overall"]["approval_rate"]
    assert 0.8 <= rate <= 1.0, "refusals are rare (DOMAIN.md)"
    assert body["by_month"], "decisions spread over past months"
    assert len({m["month"] for m in body["by_month"]}) >= 3


def test_a_date_range_counts_only_decisions_inside_it(
    infra: Infra, review: ServiceProcess, simulated: dict[str, str]
) -> None:
    whole = _summary(review, simulated["EU_officer"]).json()
    months = [m["month"] for m in whole["by_month"]]
    start = date.fromisoformat(months[1] + "-01")
    end = date.today()
    r = _summary(
        review,
        simulated["EU_officer"],
        group_by="form",
        **{"from": start.isoformat(), "to": end.isoformat()},
    )
    body = r.json()
    expected = recount(infra, "form", start, end)
    _check(body["overall"], expected["(all)"])
    assert body["overall"]["decided"] < whole["overall"]["decided"]
    bad = _summary(review, simulated["EU_officer"], **{"from": "2026-13-01"})
    assert bad.status_code == 422


def test_the_backlog_and_breaches_match_the_tables(
    infra: Infra, review: ServiceProcess, simulated: dict[str, str]
) -> None:
    body = _summary(review, simulated["EU_officer"]).json()
    engine = _engine(infra)
    with engine.connect() as conn:
        open_by_state = dict(
            conn.execute(
                text(
                    "SELECT state, COUNT(*) FROM cases WHERE state NOT IN "
                    "('approved','refused','not_admitted','withdrawn','lapsed') GROUP BY state"
                )
            ).all()
        )
        breaches = conn.execute(text("SELECT COUNT(*) FROM breaches")).scalar_one()
    engine.dispose()
    shown = {s: n for s, n in body["backlog"]["by_state"].items() if n}
    assert shown == open_by_state
    assert sum(body["backlog"]["by_age"].values()) == sum(open_by_state.values())
    assert body["breaches"]["total"] == breaches
    assert breaches > 0, "month-long waits for a list breach the queue target"


def test_csv_has_the_same_figures_as_the_json(
    review: ServiceProcess, simulated: dict[str, str]
) -> None:
    token = simulated["EU_officer"]
    body = _summary(review, token, group_by="form").json()
    r = _summary(review, token, group_by="form", format="csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows[0]["group"] == "(all)"
    assert int(rows[0]["decided"]) == body["overall"]["decided"]
    by_group = {row["group"]: row for row in rows[1:]}
    for group in body["groups"]:
        row = by_group[group["group"]]
        assert int(row["approved"]) == group["outcomes"]["approved"]
        median = group["processing_days"]["total"]["median"]
        assert row["total_median_days"] == ("" if median is None else str(median))


def test_the_chinese_side_gets_its_own_aggregates_without_commercial_fields(
    infra: Infra, review: ServiceProcess, simulated: dict[str, str]
) -> None:
    """China's figures are those of the cases sent to China (F5), from the same definition."""
    from fastapi.encoders import jsonable_encoder
    from sqlmodel import Session

    from tests.metrics_oracle import summary_from_audit

    eu = _summary(review, simulated["EU_officer"], group_by="value_chain")
    cn = _summary(review, simulated["CN_officer"], group_by="value_chain")
    assert cn.status_code == 200
    engine = _engine(infra)
    with Session(engine) as session:
        expected = summary_from_audit(
            session,
            Protocol.load(),
            date.fromisoformat(cn.json()["as_of"]),
            "value_chain",
            audience="CN",
        )
    engine.dispose()
    assert cn.json() == jsonable_encoder(expected)
    assert 0 < cn.json()["overall"]["submitted"] < eu.json()["overall"]["submitted"]
    for key in COMMERCIAL:
        assert f'"{key}"' not in cn.text


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"to": "9999-12-31"}, "to"),
        ({"from": "0001-01-01"}, "from"),
        ({"from": "2019-12-31", "to": "2020-01-31"}, "from"),
        ({"to": (date.today() + timedelta(days=400)).isoformat()}, "to"),
    ],
)
def test_a_period_outside_the_channel_s_years_is_refused_with_the_parameter_named(
    review: ServiceProcess,
    simulated: dict[str, str],
    officials: dict[str, dict[str, Any]],
    params: dict[str, str],
    field: str,
) -> None:
    """F15: the summary and the dashboard answered 500 (or dropped the connection) here."""
    r = _summary(review, simulated["EU_officer"], **params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == [field]
    with console(review.url, officials["eu_officer"]) as c:
        page = c.get("/dashboard", params=params, timeout=30)
    assert page.status_code == 200, page.text[:300]
    assert "must be from 2020-01-01" in page.text
    assert 'id="kpi-decided"' in page.text, "the dashboard shows all time instead"


def test_applicants_and_strangers_cannot_read_metrics(
    review: ServiceProcess, company_a: dict[str, Any]
) -> None:
    with review.client() as c:
        assert c.get("/v1/metrics/summary").status_code == 401
    with review.client(company_a["api_key"]) as c:
        assert c.get("/v1/metrics/summary").status_code == 403


@pytest.mark.parametrize("service", ["intake", "review"])
def test_prometheus_metrics_name_the_operational_series(
    service: str,
    intake: ServiceProcess,
    review: ServiceProcess,
    simulated: dict[str, str],
) -> None:
    process = intake if service == "intake" else review
    body = httpx.get(process.url + "/metrics", timeout=10).text
    for series in (
        "reechannel_http_request_seconds_bucket",
        "reechannel_events_consumed_total",
        "reechannel_outbox_lag_seconds",
        "reechannel_consumer_lag",
        "reechannel_dlq_size",
    ):
        assert series in body, (service, series)
