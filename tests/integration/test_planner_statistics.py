"""Planner statistics kept fresh by the services themselves (shared/db.py: analyze_stale)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from shared.config import CommonSettings
from shared.db import ANALYZE_BASE_ROWS, advisory_key, analyze_stale, make_engine
from tests.support import Infra, wait_until

# "quiet" changes as much as "busy" but is not watched.
WATCHED = ["busy", "absent"]


@pytest.fixture
def engine(infra: Infra, tmp_path: Path) -> Iterator[Engine]:
    if not infra.database_url:
        pytest.skip("planner statistics are PostgreSQL's; this run has no DATABASE_URL")
    own = infra.isolated(tmp_path)
    settings = CommonSettings(DATABASE_URL=own.database_url, REE_SCHEMA_PREFIX=own.prefix)
    schema = settings.schema_for("stats")
    engine = make_engine(settings, "stats")
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(text("CREATE TABLE busy (id int PRIMARY KEY, status text)"))
        conn.execute(text("CREATE TABLE quiet (id int PRIMARY KEY)"))
    yield engine
    engine.dispose()
    own.drop_schemas()


def change(engine: Engine, rows: int, start: int = 0) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO busy SELECT g, 'pending'"
                " FROM generate_series(CAST(:a AS int), CAST(:b AS int)) g"
            ),
            {"a": start, "b": start + rows - 1},
        )
        conn.execute(text("INSERT INTO quiet SELECT id FROM busy WHERE id >= :a"), {"a": start})
        conn.execute(text("SELECT pg_stat_force_next_flush()"))  # counters visible at once


def last_analyzed(engine: Engine, table: str) -> object:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT last_analyze FROM pg_stat_user_tables"
                " WHERE schemaname = current_schema() AND relname = :t"
            ),
            {"t": table},
        ).scalar()


def test_a_table_changed_much_since_its_last_analyze_is_analyzed_once(engine: Engine) -> None:
    change(engine, ANALYZE_BASE_ROWS // 2)
    assert analyze_stale(engine, WATCHED) == [], "a few changes are left to autovacuum"

    change(engine, 2 * ANALYZE_BASE_ROWS, start=ANALYZE_BASE_ROWS)
    assert wait_until(lambda: analyze_stale(engine, WATCHED), 15) == ["busy"]
    assert last_analyzed(engine, "busy") is not None
    assert last_analyzed(engine, "quiet") is None, "only the tables asked for"
    assert analyze_stale(engine, WATCHED) == [], "nothing changed since"


def test_one_replica_at_a_time_analyzes(engine: Engine) -> None:
    change(engine, 2 * ANALYZE_BASE_ROWS)
    with engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": advisory_key(f"analyze:{schema}")})
        assert analyze_stale(engine, WATCHED) == [], "another replica holds the lock"
        conn.execute(text("SELECT pg_advisory_unlock_all()"))
    assert wait_until(lambda: analyze_stale(engine, WATCHED), 15) == ["busy"]


def test_notify_keeps_its_deliveries_statistics_fresh(tmp_path: Path) -> None:
    from services.notify.app import build
    from services.notify.settings import NotifySettings

    app = build(NotifySettings(DATABASE_URL=None, REE_DATA_DIR=str(tmp_path)))
    assert app.state.runtime.analyzed == ["webhook_deliveries"]
