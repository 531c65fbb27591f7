"""Fast-changing tables kept vacuumed and analyzed by the services themselves (shared/db.py:
upkeep_tables), and the outbox relay's walk of its index whatever the statistics say."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from shared.config import CommonSettings
from shared.db import (
    IN_INDEX_ORDER,
    UPKEEP_BASE_ROWS,
    advisory_key,
    make_engine,
    upkeep_tables,
)
from shared.outbox import OutboxEvent, OutboxRelay, unpublished_query
from tests.support import Infra, wait_until

# "quiet" changes as much as "busy" but is not watched.
WATCHED = ["busy", "absent"]


@pytest.fixture
def engine(infra: Infra, tmp_path: Path) -> Iterator[Engine]:
    if not infra.database_url:
        pytest.skip("VACUUM and ANALYZE are PostgreSQL's; this run has no DATABASE_URL")
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
    change(engine, UPKEEP_BASE_ROWS // 2)
    assert upkeep_tables(engine, WATCHED) == [], "a few changes are left to autovacuum"

    change(engine, 2 * UPKEEP_BASE_ROWS, start=UPKEEP_BASE_ROWS)
    assert wait_until(lambda: upkeep_tables(engine, WATCHED), 15) == ["ANALYZE busy"]
    assert last_analyzed(engine, "busy") is not None
    assert last_analyzed(engine, "quiet") is None, "only the tables asked for"
    assert upkeep_tables(engine, WATCHED) == [], "nothing changed since"


def test_one_replica_at_a_time_analyzes(engine: Engine) -> None:
    change(engine, 2 * UPKEEP_BASE_ROWS)
    with engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": advisory_key(f"upkeep:{schema}")})
        assert upkeep_tables(engine, WATCHED) == [], "another replica holds the lock"
        conn.execute(text("SELECT pg_advisory_unlock_all()"))
    assert wait_until(lambda: upkeep_tables(engine, WATCHED), 15) == ["ANALYZE busy"]


def dead_rows(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT n_dead_tup FROM pg_stat_user_tables"
                    " WHERE schemaname = current_schema() AND relname = :t"
                ),
                {"t": table},
            ).scalar_one()
        )


def test_a_table_with_many_dead_rows_is_vacuumed(engine: Engine) -> None:
    rows = 2 * UPKEEP_BASE_ROWS
    change(engine, rows)
    assert wait_until(lambda: upkeep_tables(engine, WATCHED), 15) == ["ANALYZE busy"]
    with engine.begin() as conn:
        # Each update leaves the row's old version behind, dead (as publishing an event does).
        conn.execute(text("UPDATE busy SET status = 'sent'"))
        conn.execute(text("SELECT pg_stat_force_next_flush()"))
    assert wait_until(lambda: dead_rows(engine, "busy") >= rows, 15)
    done = wait_until(lambda: upkeep_tables(engine, WATCHED), 15)
    assert "VACUUM busy" in done, done
    assert wait_until(lambda: dead_rows(engine, "busy") == 0, 15)
    assert upkeep_tables(engine, WATCHED) == [], "nothing to do since"


def test_the_relay_walks_the_unpublished_index_whatever_the_statistics(engine: Engine) -> None:
    OutboxEvent.__table__.create(engine.connect().execution_options(isolation_level="AUTOCOMMIT"))  # type: ignore[attr-defined]
    with engine.begin() as conn:
        # Many events published, a few waiting, and statistics that know of none of them.
        conn.execute(
            text(
                "INSERT INTO outbox (event_id, stream, event_type, fields_json, created_at,"
                " published_at) SELECT 'e' || g, 's', 't', '{}', now(),"
                " CASE WHEN g > 5000 THEN NULL ELSE now() END"
                " FROM generate_series(1, 5003) g"
            )
        )
        conn.execute(IN_INDEX_ORDER)
        query = unpublished_query(200).compile(
            dialect=engine.dialect, compile_kwargs={"literal_binds": True}
        )
        plan = conn.execute(text(f"EXPLAIN (FORMAT JSON) {query}")).scalar_one()
    nodes = json.dumps(plan)
    assert '"Index Name": "ix_outbox_unpublished"' in nodes, nodes
    assert "Sort" not in nodes, nodes
    relay = OutboxRelay(engine, redis=None, lock_name="test")  # type: ignore[arg-type]
    assert [row.seq for row in relay._unpublished()] == [5001, 5002, 5003]


def test_every_service_keeps_its_outbox_and_notify_its_deliveries(tmp_path: Path) -> None:
    from services.notify.app import build
    from services.notify.settings import NotifySettings
    from services.review.settings import ReviewSettings
    from shared.runtime import ServiceRuntime

    # Any service's runtime (review's, built without its app: intake's and review's models
    # cannot be loaded in one process, both define information_requests).
    runtime = ServiceRuntime(
        ReviewSettings(DATABASE_URL=None, REE_DATA_DIR=str(tmp_path / "r")), tmp_path
    )
    assert runtime.kept == ["outbox"]
    app = build(NotifySettings(DATABASE_URL=None, REE_DATA_DIR=str(tmp_path / "n")))
    assert app.state.runtime.kept == ["outbox", "webhook_deliveries"]
