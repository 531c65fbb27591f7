"""The metrics' aggregates stay equal to the definition through every kind of transition.

A back-dated history is played through Casework (the demo simulator's `History`: opening,
screening, requests for information and answers, lapses, withdrawals, priority lists, fast
track, acknowledgement, escalation, decisions, deadline breaches); then

* the summary read from the aggregates equals `summary_from_audit`, the definition computed
  from every case and audit entry, for every grouping and for periods that cut months;
* the facts and aggregates kept transition by transition equal a backfill from scratch.

SQLite by default; PostgreSQL in a throwaway schema when DATABASE_URL is set.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.encoders import jsonable_encoder
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.review.domain.protocol import Protocol
from services.review.domain.statistics import hist_percentile, percentile
from services.review.metrics.facts import GROUPINGS, OUTCOMES, Audience
from services.review.metrics.projection import backfill
from services.review.metrics.reports import Period, period_ranges, summary
from tests.metrics_oracle import summary_from_audit
from tests.unit.review.simulated import simulated_history

NOW = datetime.now(UTC) - timedelta(minutes=5)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, date]]:
    # Seed 11: a history of 110 with every kind of outcome (refusals are rare: about 4 %).
    with simulated_history(tmp_path_factory.mktemp("metrics"), 11, 5, 110, NOW) as played:
        yield played.engine, NOW.date()


def test_the_history_exercises_every_kind_of_transition(history: tuple[Engine, date]) -> None:
    engine, _ = history
    with engine.connect() as conn:
        actions = {a for (a,) in conn.execute(text("SELECT DISTINCT action FROM audit_entries"))}
        states = {s for (s,) in conn.execute(text("SELECT DISTINCT state FROM cases"))}
        breaches = conn.execute(text("SELECT COUNT(*) FROM breaches")).scalar_one()
    assert {"open", "request_information", "answer", "issue_priority_list", "escalate"} <= actions
    assert {"approve", "refuse", "decline", "withdraw"} <= actions
    assert set(OUTCOMES) <= states, states
    assert "lapse" in actions
    assert breaches > 0


def _periods(today: date) -> list[Period]:
    mid = today - timedelta(days=47)
    return [
        Period(),
        Period(mid, None),
        Period(None, mid),
        Period(mid.replace(day=1), today),
        Period(mid - timedelta(days=20), mid),
        Period(mid, mid + timedelta(days=3)),
        Period(today + timedelta(days=1), None),
    ]


@pytest.mark.parametrize("audience", ["EU", "CN"])
@pytest.mark.parametrize("group_by", GROUPINGS)
def test_the_summary_from_the_aggregates_equals_the_definition(
    history: tuple[Engine, date], group_by: str, audience: Audience
) -> None:
    """China's summary (F5) from the same definition over the cases sent to China only."""
    engine, today = history
    protocol = Protocol.load()
    with Session(engine) as session:
        for period in _periods(today):
            fast = jsonable_encoder(summary(session, protocol, today, group_by, period, audience))
            slow = summary_from_audit(session, protocol, today, group_by, period, audience)
            assert fast == jsonable_encoder(slow), period
            if period == Period() and audience == "EU":
                assert fast["overall"]["decided"] > 40
                assert fast["backlog"]["total"] > 0
            elif period == Period():
                everyone = summary(session, protocol, today, group_by, period)
                assert 0 < fast["overall"]["submitted"] < everyone["overall"]["submitted"]
                assert fast["overall"]["decided"] > 10
                assert "not_admitted" not in fast["overall"]["outcomes"]
                assert not {"submitted", "eu_screening", "queued"} & set(
                    fast["backlog"]["by_state"]
                )
                assert set(fast["stages"]) == {"cn_review", "awaiting_applicant", "joint_review"}


def _snapshot(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {
            "facts": sorted(
                tuple(str(v) for v in row)
                for row in conn.execute(text("SELECT * FROM case_facts")).all()
            ),
            "counts": sorted(
                tuple(str(v) for v in row)
                for row in conn.execute(text("SELECT * FROM metric_counts WHERE cases <> 0")).all()
            ),
            "members": sorted(
                tuple(str(v) for v in row)
                for row in conn.execute(text("SELECT * FROM metric_members WHERE cases <> 0"))
            ),
        }


def test_facts_kept_transition_by_transition_equal_a_backfill(
    history: tuple[Engine, date],
) -> None:
    engine, _ = history
    kept = _snapshot(engine)
    with engine.begin() as conn:
        assert backfill(conn) == len(kept["facts"])
    assert _snapshot(engine) == kept


def test_the_migration_fills_the_tables_of_an_existing_database(
    history: tuple[Engine, date],
) -> None:
    """Back to the revision before the metrics tables, then up again: the backfill in the
    migration rebuilds exactly what the transitions kept."""
    from alembic import command
    from alembic.config import Config

    from services.review.app import MIGRATIONS

    engine, _ = history
    kept = _snapshot(engine)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "61703395a50f")
        assert "case_facts" not in sa_inspect(conn).get_table_names()
        command.upgrade(cfg, "head")
    assert _snapshot(engine) == kept


def test_percentiles_from_a_histogram_equal_those_of_the_values() -> None:
    rng = random.Random(3)
    for size in (1, 2, 3, 7, 10, 11, 100):
        values = [rng.randrange(0, 40) for _ in range(size)]
        hist: dict[int, int] = {}
        for v in values:
            hist[v] = hist.get(v, 0) + 1
        for q in (50, 90, 10, 99):
            assert hist_percentile(hist, q) == percentile(values, q)
    assert hist_percentile({}, 50) is None


def test_a_period_is_read_as_whole_months_and_the_days_at_either_end() -> None:
    assert period_ranges(Period()) == [("m", date(1, 1, 1), date(9999, 12, 31))]
    assert period_ranges(Period(date(2026, 1, 15), date(2026, 1, 20))) == [
        ("d", date(2026, 1, 15), date(2026, 1, 20))
    ]
    assert period_ranges(Period(date(2026, 1, 15), date(2026, 3, 31))) == [
        ("m", date(2026, 2, 1), date(2026, 3, 31)),
        ("d", date(2026, 1, 15), date(2026, 1, 31)),
    ]
    assert period_ranges(Period(date(2026, 1, 1), date(2026, 3, 3))) == [
        ("m", date(2026, 1, 1), date(2026, 2, 28)),
        ("d", date(2026, 3, 1), date(2026, 3, 3)),
    ]
    assert period_ranges(Period(None, date(2026, 2, 10))) == [
        ("m", date(1, 1, 1), date(2026, 1, 31)),
        ("d", date(2026, 2, 1), date(2026, 2, 10)),
    ]
    assert period_ranges(Period(date(2026, 2, 10), date(2026, 3, 5))) == [
        ("d", date(2026, 2, 10), date(2026, 3, 5))
    ]
