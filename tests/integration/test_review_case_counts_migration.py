"""case_counts as the migration that adds `stops_before_decision` and the benchmark's bulk
load write it: what the service then reads for the EU metrics' `stopping_before_decision`
equals counting the cases (PostgreSQL when DATABASE_URL is set, else SQLite)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlmodel import Session

from bench.scale import bulk_load
from services.review.app import MIGRATIONS
from services.review.domain.protocol import Protocol
from services.review.queue import stopping_before_decision
from shared.db import is_sqlite
from tests.integration.test_review_audit_migration import _filler, _upgrade
from tests.integration.test_review_search_columns import schema_engine
from tests.metrics_oracle import stopping_before_decision_from_columns

__all__ = ["schema_engine"]  # the fixture, shared with the search columns' tests

BEFORE = "d4e5f6a7b8c9"
DECISION = date(2026, 12, 20)


def counted_one_by_one(engine: sa.Engine, protocol: Protocol) -> int:
    with Session(engine) as session:
        return stopping_before_decision_from_columns(session, protocol)


def test_the_migration_counts_the_cases_opened_before_it(
    schema_engine: tuple[sa.Engine, str],
) -> None:
    engine, schema = schema_engine
    protocol = Protocol.load()
    closed = next(s for s in protocol.states if protocol.is_terminal(s))
    _upgrade(engine, schema, BEFORE)
    meta = sa.MetaData(schema=None if is_sqlite(engine) else schema)
    cases = sa.Table("cases", meta, autoload_with=engine)
    made: list[tuple[str, date | None, date | None]] = [
        (protocol.target_of("open"), DECISION - timedelta(days=1), DECISION),  # counted
        (protocol.target_of("open"), DECISION - timedelta(days=1), DECISION),  # counted
        (protocol.target_of("open"), DECISION, DECISION),  # the same day: not before
        (protocol.target_of("open"), None, DECISION),  # no stop date
        (protocol.target_of("open"), DECISION, None),  # no expected decision
        (closed, DECISION - timedelta(days=1), DECISION),  # closed
    ]
    with engine.begin() as conn:
        for n, (state, stop, decision) in enumerate(made):
            row: dict[str, Any] = {c.name: _filler(c) for c in cases.columns if not c.nullable}
            row |= {
                "id": str(uuid.uuid4()),
                "application_id": str(uuid.uuid4()),
                "reference": f"REC-{n}",
                "state": state,
                "tier": "P2",
                "production_stop_date": stop,
                "expected_decision_date": decision,
                "submitted_at": datetime(2026, 11, 2, tzinfo=UTC),
            }
            conn.execute(cases.insert().values(**row))
    _upgrade(engine, schema, "head")
    with Session(engine) as session:
        assert stopping_before_decision(session, protocol) == 2
    assert counted_one_by_one(engine, protocol) == 2
    assert all_counted(engine) == len(made)

    # Down again: the table as it was, its totals recounted; and up once more.
    _downgrade(engine, schema, BEFORE)
    meta = sa.MetaData(schema=None if is_sqlite(engine) else schema)
    counts = sa.Table("case_counts", meta, autoload_with=engine)
    assert "stops_before_decision" not in counts.columns
    assert all_counted(engine) == len(made)
    _upgrade(engine, schema, "head")
    with Session(engine) as session:
        assert stopping_before_decision(session, protocol) == 2


def all_counted(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT sum(cases) FROM case_counts")).scalar_one())


def _downgrade(engine: sa.Engine, schema: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if not is_sqlite(engine):
            conn.execute(sa.text(f'SET LOCAL search_path TO "{schema}"'))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_bulk_loaded_cases_are_counted_as_the_service_counts_them(
    schema_engine: tuple[sa.Engine, str],
) -> None:
    engine, schema = schema_engine
    if is_sqlite(engine):
        pytest.skip("the bulk load is PostgreSQL's own SQL")
    _upgrade(engine, schema, "head")
    bulk_load(engine, 0, 200)
    protocol = Protocol.load()
    with Session(engine) as session:
        served = stopping_before_decision(session, protocol)
    assert served == counted_one_by_one(engine, protocol) > 0
