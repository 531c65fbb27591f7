"""A small history on the public timeline, played through Casework (the simulator's History):
every case ends as planned, runs forward in time, and the Commission's figures read from the
aggregates equal their definition recomputed from every case and audit entry.

SQLite by default; PostgreSQL in a throwaway schema when DATABASE_URL is set.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.encoders import jsonable_encoder
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from reechannel.simulate.timeline import HistoryPlan
from services.review.audit_service import AuditKeys
from services.review.audit_service.chain import chain_entry, record_of
from services.review.audit_service.verification import audit_verify_command, verify_all
from services.review.domain.audit import BACK_IN_TIME, AuditEntry
from services.review.domain.calendar import working_days_between
from services.review.domain.protocol import Protocol
from services.review.domain.statistics import MIN_PROCESSING_DAYS, distribution
from services.review.metrics.commission import (
    CATEGORIES,
    commission_csv,
    commission_figures,
    monthly_csv,
    monthly_report,
)
from services.review.store import Case
from shared.config import AuditSettings
from tests.metrics_oracle import load_facts
from tests.unit.review.simulated import simulated_history

NOW = datetime.now(UTC) - timedelta(minutes=5)


@dataclass
class Played:
    engine: Engine
    plan: HistoryPlan
    settings: dict[str, Any]
    today: date


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Played]:
    with simulated_history(tmp_path_factory.mktemp("timeline"), 23, 6, 160, NOW) as history:
        yield Played(history.engine, history.plan, history.settings, NOW.date())


def test_every_case_ends_as_the_plan_says(played: Played) -> None:
    with Session(played.engine) as session:
        states = {c.reference: c.state for c in session.exec(select(Case))}
    assert set(states) == set(played.plan.cases)
    protocol = Protocol.load()
    wrong = {
        ref: (case.outcome, states[ref])
        for ref, case in played.plan.cases.items()
        if (case.outcome or "open")
        != (states[ref] if protocol.is_terminal(states[ref]) else "open")
    }
    assert not wrong
    assert {"approved", "refused", "withdrawn", "lapsed", "not_admitted"} <= set(states.values())


def test_every_case_s_history_runs_forward_and_verifies(played: Played) -> None:
    with played.engine.connect() as conn:
        rows = conn.execute(text("SELECT case_id, at FROM audit_entries ORDER BY case_id, seq"))
        by_case: dict[str, list[Any]] = defaultdict(list)
        for case_id, at in rows:
            by_case[case_id].append(at)
    assert by_case
    assert all(moments == sorted(moments) for moments in by_case.values())
    keys = AuditKeys.from_settings(AuditSettings(**played.settings))
    with Session(played.engine) as session:
        report = verify_all(session, keys)
    assert report["ok"], report["failures"][:3]


def test_audit_verify_names_a_case_whose_history_goes_back_in_time(played: Played) -> None:
    """A writer with the chain key (the simulator as it was) chains an entry dated before the
    one it follows: the chain is intact, and verify still names the case."""
    settings = AuditSettings(**played.settings)
    keys = AuditKeys.from_settings(settings)
    with Session(played.engine) as session:
        case = session.exec(select(Case).where(Case.state == "approved")).first()
        assert case is not None
        entry = AuditEntry(
            id=str(uuid.uuid4()),
            case_id=case.id,
            seq=0,
            actor_id="system",
            actor_side="system",
            actor_role=None,
            action="note",
            at=case.opened_at.replace(tzinfo=UTC) - timedelta(days=3),
            from_state=case.state,
            to_state=case.state,
            payload={"visibility": "joint", "text": "back-dated"},
        )
        session.add(record_of(chain_entry(case, entry, keys.chain_key)))
        session.add(case)
        session.commit()
        reference, case_id = case.reference, case.id
    report, lines = audit_verify_command(settings, None, None)
    assert not report["ok"]
    [failure] = report["failures"]
    assert failure["case_id"] == case_id and failure["reason"].startswith(BACK_IN_TIME)
    assert any(line.startswith(f"BACK IN TIME case {case_id} ({reference})") for line in lines)


def _share_from_audit(played: Played, protocol: Protocol) -> list[dict[str, Any]]:
    with Session(played.engine) as session:
        facts = load_facts(session, protocol, played.today)
    filed = Counter(f.opened_at.strftime("%Y-%m") for f in facts)
    approved = Counter(
        f.decided_at.strftime("%Y-%m") for f in facts if f.outcome == "approved" and f.decided_at
    )
    series, total_filed, total_approved = [], 0, 0
    for month in sorted(set(filed) | set(approved)):
        total_filed += filed[month]
        total_approved += approved[month]
        share = round(total_approved / total_filed, 4) if total_filed else None
        series.append(
            {"month": month, "filed": total_filed, "approved": total_approved, "share": share}
        )
    return series


def _categories_from_audit(played: Played, protocol: Protocol, audience: str) -> list[Any]:
    with Session(played.engine) as session:
        facts = load_facts(session, protocol, played.today, audience)  # type: ignore[arg-type]
    per: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for f in facts:
        if f.outcome in ("approved", "refused") and f.decided_at and f.total_days is not None:
            for form in f.groups["form"]:
                if form in CATEGORIES:
                    per[f.decided_at.strftime("%Y-%m")][form].append(f.total_days)
    series = []
    for month in sorted(per):
        categories = {}
        for form, label in CATEGORIES.items():
            values = per[month][form]
            kept = [v for v in values if v >= MIN_PROCESSING_DAYS]
            categories[form] = {
                "label": label,
                **distribution(kept),
                "under_floor": len(values) - len(kept),
            }
        series.append({"month": month, "categories": categories})
    return series


def _past_statutory_from_cases(played: Played, protocol: Protocol) -> list[str]:
    """Open acknowledged cases whose 45 CN working days (plus pauses) from acceptance were
    all over by yesterday."""
    limit = protocol.deadlines["cn_review"].limit("statutory", None)
    with Session(played.engine) as session:
        cases = session.exec(select(Case).where(Case.acknowledged_on.is_not(None))).all()  # type: ignore[union-attr]
    return sorted(
        c.reference
        for c in cases
        if not protocol.is_terminal(c.state)
        and c.acknowledged_on is not None
        and working_days_between("CN", c.acknowledged_on, played.today - timedelta(days=1))
        >= limit + c.paused_working_days
    )


@pytest.mark.parametrize("audience", ["EU", "CN"])
def test_the_commission_s_figures_equal_their_definition(played: Played, audience: str) -> None:
    protocol = Protocol.load()
    with Session(played.engine) as session:
        figures = jsonable_encoder(
            commission_figures(session, protocol, played.today, audience)  # type: ignore[arg-type]
        )
    if audience == "EU":
        assert figures["approved_share"] == _share_from_audit(played, protocol)
        assert figures["approved_share"][0]["month"] == "2025-04"
        assert 0.4 < figures["approved_share"][-1]["share"] < 0.95
    assert figures["processing_by_category"] == _categories_from_audit(played, protocol, audience)
    past = figures["past_statutory"]
    assert sorted(c["reference"] for c in past["cases"]) == _past_statutory_from_cases(
        played, protocol
    )
    assert past["count"] == len(past["cases"]) and past["limit_working_days"] == 45
    csv_text = commission_csv(figures)
    assert csv_text.splitlines()[0] == "figure,month,key,value"
    assert f"approved_share,{figures['approved_share'][-1]['month']},filed," in csv_text


def test_a_month_s_report_has_its_decisions_categories_and_share(played: Played) -> None:
    protocol = Protocol.load()
    month = date(2025, 11, 1)
    with Session(played.engine) as session:
        report = monthly_report(session, protocol, played.today, "EU", month)
        now = monthly_report(session, protocol, played.today, "EU", played.today.replace(day=1))
    decided = [
        c
        for c in played.plan.cases.values()
        if c.outcome and c.decided and c.decided.strftime("%Y-%m") == "2025-11"
    ]
    for outcome in ("approved", "refused"):  # (a lapse's day is the ticker's, not planned)
        assert report["outcomes"][outcome] == sum(c.outcome == outcome for c in decided)
    assert report["decided"] >= report["outcomes"]["approved"] > 0
    assert report["approved_share"][-1]["month"] == "2025-11"
    assert set(report["categories"]) == set(CATEGORIES)
    assert report["past_statutory"] is None and now["past_statutory"] is not None
    assert "decided,2025-11,approved," in monthly_csv(report)
