"""The outbox relay's lock: short, renewed while a pass runs, soon free after a relay dies."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlmodel import Session

from shared.events import CloudEvent
from shared.outbox import OutboxEvent, OutboxRelay, add_event
from shared.redis import connect
from tests.support import Infra

LOCK_MS = 300


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    # A plain SQLite file in rollback-journal mode, so that another connection's exclusive
    # transaction really stops the relay's read (a long pass without any fake).
    path = tmp_path / "outbox.db"
    engine = create_engine(f"sqlite:///{path}")
    OutboxEvent.__table__.create(engine)  # type: ignore[attr-defined]
    yield engine, path
    engine.dispose()


@pytest.fixture
async def redis(infra: Infra) -> AsyncIterator[aioredis.Redis]:
    client = connect(infra.redis_url)
    yield client
    await client.aclose()


def stage_one(engine: Engine) -> str:
    event = CloudEvent(source="intake", type="application.withdrawn", subject="a1", data={})
    with Session(engine) as session:
        add_event(session, event)
        session.commit()
    return event.id


def relay_for(engine: Engine, redis: aioredis.Redis, prefix: str) -> OutboxRelay:
    return OutboxRelay(
        engine, redis, lock_name=f"{prefix}lock", stream_prefix=prefix, lock_ms=LOCK_MS
    )


async def test_a_relay_that_died_holding_the_lock_delays_the_next_only_for_the_locks_time(
    database: tuple[Engine, Path],
    redis: aioredis.Redis,
    record_property: Callable[[str, object], None],
) -> None:
    engine, _ = database
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    relay = relay_for(engine, redis, prefix)
    # What a relay killed mid-pass leaves behind: the lock, under its own token, for LOCK_MS.
    await redis.set(relay.lock_key, "a-relay-that-was-killed", px=LOCK_MS)
    stage_one(engine)
    killed_at = time.monotonic()
    assert await relay.relay_once() == 0, "the dead relay's lock still holds"
    while await relay.relay_once() == 0:
        assert time.monotonic() - killed_at < 30, "the lock never expired"
        await asyncio.sleep(LOCK_MS / 10_000)
    waited = time.monotonic() - killed_at
    record_property("relay_recovery_seconds", round(waited, 3))
    assert await redis.xlen(prefix + "intake.events") == 1
    assert await redis.exists(relay.lock_key) == 0, "released after the pass"
    await redis.delete(prefix + "intake.events", relay.memory_key)


async def test_a_pass_that_runs_longer_than_the_lock_keeps_it(
    database: tuple[Engine, Path], redis: aioredis.Redis
) -> None:
    engine, path = database
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    relay = relay_for(engine, redis, prefix)
    stage_one(engine)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # the relay's read now waits (pysqlite waits up to 5 s)
    try:
        pass_ = asyncio.create_task(relay.relay_once())
        while await redis.get(relay.lock_key) is None:
            assert not pass_.done(), "the pass ended without taking the lock"
            await asyncio.sleep(0.01)
        # Four lock lifetimes later the pass still runs, and still holds the lock.
        await asyncio.sleep(4 * LOCK_MS / 1000)
        assert not pass_.done()
        assert await redis.get(relay.lock_key) == relay._token
        assert await redis.pttl(relay.lock_key) <= LOCK_MS
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert await pass_ == 1
    assert await redis.exists(relay.lock_key) == 0
    assert await redis.xlen(prefix + "intake.events") == 1
    await redis.delete(prefix + "intake.events", relay.memory_key)
