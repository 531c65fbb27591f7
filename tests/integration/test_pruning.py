"""Tables that stop growing (shared/pruning.py): old published outbox rows, processed-event
ids past the redelivery horizon and notify's old delivery log go in batches; everything
newer, unpublished, still pending or held back by a dead letter stays."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection, Engine

from services.notify.app import MIGRATIONS as NOTIFY_MIGRATIONS
from services.notify.settings import NotifySettings
from services.notify.store.log_retention import delivery_log_rules
from services.notify.store.tables import PENDING, SUCCEEDED
from shared.config import CommonSettings, ServiceSettings
from shared.consumer import dlq_stream
from shared.db import advisory_key, make_engine, migrate, utcnow
from shared.outbox import OutboxEvent, ProcessedEvent
from shared.pruning import EventRecordPruning, Rule, prune, published_outbox_rule
from tests.support import Infra

OUTBOX = OutboxEvent.__table__  # type: ignore[attr-defined]
PROCESSED = ProcessedEvent.__table__  # type: ignore[attr-defined]


@pytest.fixture
def own(infra: Infra, tmp_path: Path) -> Iterator[Infra]:
    own = infra.isolated(tmp_path)
    yield own
    own.drop_schemas()


@pytest.fixture
def engine(own: Infra) -> Iterator[Engine]:
    """Notify's schema, from its migrations: it has every table pruning touches."""
    settings = CommonSettings(
        DATABASE_URL=own.database_url, REE_SCHEMA_PREFIX=own.prefix, REE_DATA_DIR=own.data_dir
    )
    engine = make_engine(settings, "notify")
    migrate(engine, NOTIFY_MIGRATIONS, settings.schema_for("notify"))
    yield engine
    engine.dispose()


def outbox_row(conn: Connection, n: int, created: datetime, published: datetime | None) -> None:
    conn.execute(
        insert(OUTBOX).values(
            event_id=f"e-{n}",
            stream="intake.events",
            event_type="t",
            fields_json="{}",
            created_at=created,
            published_at=published,
        )
    )


def processed_row(conn: Connection, n: int, at: datetime) -> None:
    conn.execute(insert(PROCESSED).values(consumer_group="g", event_id=f"p-{n}", processed_at=at))


def count(engine: Engine, table: str, where: str = "") -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table} {where}")).scalar_one())


def counting(rule: Rule, calls: list[int]) -> Rule:
    def wrapped(conn: Connection, limit: int) -> int:
        gone = rule(conn, limit)
        calls.append(gone)
        return gone

    return wrapped


def test_published_outbox_rows_past_the_replay_window_go_in_batches(engine: Engine) -> None:
    now = utcnow()
    old, recent = now - timedelta(hours=100), now - timedelta(hours=1)
    with engine.begin() as conn:
        for n in range(7):
            outbox_row(conn, n, old, old + timedelta(seconds=1))
        outbox_row(conn, 7, old, None)  # never published: Redis was away for days
        outbox_row(conn, 8, recent, recent)
    calls: list[int] = []
    rule = counting(published_outbox_rule(now - timedelta(hours=72)), calls)

    pruned = prune(engine, {"outbox": rule}, batch=3)

    assert pruned.rows == {"outbox": 7}
    assert calls == [3, 3, 1], "batches of three until one is short"
    with engine.connect() as conn:
        left = set(conn.execute(select(OUTBOX.c.event_id)).scalars())
    assert left == {"e-7", "e-8"}, "the unpublished row and the recent one stay"


def test_processed_ids_stay_while_an_older_dead_letter_may_be_replayed(
    engine: Engine, own: Infra
) -> None:
    now = utcnow()
    with engine.begin() as conn:
        for n, age in enumerate((400, 390, 380, 300, 10)):
            processed_row(conn, n, now - timedelta(hours=age))
    stream = own.stream("intake.events")

    async def rounds() -> tuple[int, int]:
        redis = aioredis.Redis.from_url(own.redis_url, decode_responses=True)
        pruning = EventRecordPruning(
            engine, redis, [stream], replay_hours=72, processed_hours=336, batch=2, extra=[]
        )
        try:
            # A dead letter of an event 395 hours old: the ids of events after it must stay.
            event_time = (now - timedelta(hours=395)).isoformat()
            await redis.xadd(dlq_stream(stream), {"id": "x", "time": event_time, "dlq_at": "?"})
            held_back = (await pruning.once()).rows["processed_events"]
            await redis.delete(dlq_stream(stream))
            # Without it the horizon (336 h) decides.
            return held_back, (await pruning.once()).rows["processed_events"]
        finally:
            await redis.aclose()

    assert asyncio.run(rounds()) == (1, 2)
    with engine.connect() as conn:
        left = set(conn.execute(select(PROCESSED.c.event_id)).scalars())
    assert left == {"p-3", "p-4"}, "the 300 h and 10 h old ones stay"


def test_the_horizon_must_outlast_retention_and_replay() -> None:
    # 7 days of stream retention and 72 h of replay make 240 h.
    with pytest.raises(ValidationError, match="REE_PROCESSED_EVENTS_HOURS"):
        ServiceSettings(REE_PROCESSED_EVENTS_HOURS=240)
    assert ServiceSettings(REE_PROCESSED_EVENTS_HOURS=241).processed_events_hours == 241
    with pytest.raises(ValidationError, match="REE_PROCESSED_EVENTS_HOURS"):
        ServiceSettings(REE_STREAM_RETENTION_SECONDS=30 * 24 * 3600)
    assert NotifySettings().delivery_log_days == 90
    assert NotifySettings(REE_DELIVERY_LOG_DAYS=30).delivery_log_days == 30


def add_message(conn: Connection, seq: int, created: datetime, statuses: list[str]) -> None:
    conn.execute(
        text(
            "INSERT INTO webhook_messages (seq, event_id, company_id, type, body, event_time,"
            " created_at) VALUES (:s, :e, 'c', 't', '{}', :t, :t)"
        ),
        {"s": seq, "e": f"m-{seq}", "t": created},
    )
    for i, status in enumerate(statuses):
        delivery = f"d-{seq}-{i}"
        conn.execute(
            text(
                "INSERT INTO webhook_deliveries (id, message_seq, endpoint_id, company_id,"
                " webhook_id, event_type, event_time, status, attempt_count, round_attempts,"
                " created_at, updated_at) VALUES (:id, :s, :ep, 'c', :id, 't', :t, :st, 1, 1,"
                " :t, :t)"
            ),
            {"id": delivery, "s": seq, "ep": f"ep-{i}", "t": created, "st": status},
        )
        conn.execute(
            text(
                "INSERT INTO webhook_attempts (delivery_id, number, attempted_at, duration_ms,"
                " outcome) VALUES (:d, 1, :t, 5, 'x')"
            ),
            {"d": delivery, "t": created},
        )


def test_the_delivery_log_past_its_days_goes_but_a_pending_delivery_keeps_its_message(
    engine: Engine,
) -> None:
    now = utcnow()
    old, recent = now - timedelta(days=100), now - timedelta(days=10)
    with engine.begin() as conn:
        for i in (0, 1):
            conn.execute(
                text(
                    "INSERT INTO webhook_endpoints (id, company_id, url, event_types, secret,"
                    " status, created_at, updated_at) VALUES (:id, 'c', 'https://x', '[]', 's',"
                    " 'active', :t, :t)"
                ),
                {"id": f"ep-{i}", "t": old},
            )
        for seq in (1, 2, 3):
            add_message(conn, seq, old, [SUCCEEDED, "failed"])
        add_message(conn, 4, old, [SUCCEEDED, PENDING])  # a retry is still due
        add_message(conn, 5, recent, [SUCCEEDED])
    calls: list[int] = []
    rules = {k: counting(r, calls) for k, r in delivery_log_rules(90)(now).items()}

    pruned = prune(engine, rules, batch=2)

    assert pruned.rows == {"webhook_messages": 3}
    assert calls == [2, 1]
    with engine.connect() as conn:
        seqs = set(conn.execute(text("SELECT seq FROM webhook_messages")).scalars())
    assert seqs == {4, 5}
    assert count(engine, "webhook_deliveries") == 3
    assert count(engine, "webhook_attempts") == 3


def test_one_replica_at_a_time(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's; SQLite has one process per file")
    now = utcnow()
    with engine.begin() as conn:
        outbox_row(conn, 1, now - timedelta(days=9), now - timedelta(days=9))
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    rules = {"outbox": published_outbox_rule(now - timedelta(hours=72))}
    with engine.connect() as other:
        assert other.execute(
            text("SELECT pg_try_advisory_lock(:k)"), {"k": advisory_key(f"prune:{schema}")}
        ).scalar()
        assert prune(engine, rules, batch=10).rows == {"outbox": 0}, "another replica is at it"
        other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": advisory_key(f"prune:{schema}")})
    assert prune(engine, rules, batch=10).rows == {"outbox": 1}


def test_the_services_prune_their_own_tables_on_the_settings_given(
    own: Infra, tmp_path: Path
) -> None:
    """REE_PRUNE_SECONDS, REE_OUTBOX_REPLAY_HOURS and REE_PROCESSED_EVENTS_HOURS, end to end:
    intake's published events and review's record of applying them go once past their
    windows, while the case they made stays."""
    from tests.integration.conftest import application, new_company
    from tests.support import ServiceProcess, wait_until

    env = own.env(
        REE_PRUNE_SECONDS="0.5",
        REE_STREAM_RETENTION_SECONDS="1",
        REE_OUTBOX_REPLAY_HOURS="0.0005",  # 1.8 s
        REE_PROCESSED_EVENTS_HOURS="0.001",  # 3.6 s
        REE_LOG_LEVEL="INFO",  # each round that deleted something says what
    )
    company = new_company(own)
    services = [ServiceProcess(n, env).start() for n in ("intake", "review")]
    intake, review = services
    settings = CommonSettings(
        DATABASE_URL=own.database_url, REE_SCHEMA_PREFIX=own.prefix, REE_DATA_DIR=own.data_dir
    )
    engines = {n: make_engine(settings, n) for n in ("intake", "review")}
    try:
        with intake.client(company["api_key"]) as c:
            assert c.post("/v1/applications", json=application()).status_code == 201
        wait_until(lambda: count(engines["review"], "cases") == 1, what="the case opened")
        wait_until(
            lambda: (
                count(engines["intake"], "outbox") == 0
                and count(engines["review"], "processed_events") == 0
            ),
            timeout=30,
            what="the outbox row and the processed id pruned",
        )
        # Pruned, not never written: the rounds name what they deleted.
        assert "pruned: outbox 1" in intake.log_path.read_text()
        assert "pruned: processed_events 1" in review.log_path.read_text()
        assert count(engines["review"], "cases") == 1
        assert count(engines["intake"], "applications") == 1
    finally:
        for service in services:
            service.stop()
        for engine in engines.values():
            engine.dispose()
