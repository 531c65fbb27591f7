"""The stream consumer on FastStream, driven directly against a real Redis and a real database.

The services' tests (test_intake_projection.py, tests/faults/) prove the guarantees end to
end; these pin down what FastStream would do differently left to itself: stop reading when
the group disappears, acknowledge before the transaction commits, or lose the CloudEvents id
of our plain-field entries.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from shared.consumer import StreamConsumer, make_broker
from shared.events import CloudEvent
from shared.outbox import ProcessedEvent
from shared.redis import connect
from tests.support import Infra

GROUP = "review"
TYPE = "application.submitted"


def event(n: int = 0) -> CloudEvent:
    return CloudEvent(
        source="intake", type=TYPE, subject=f"app-{n}", data={"application_id": f"app-{n}"}
    )


@pytest.fixture
async def redis(infra: Infra) -> AsyncIterator[aioredis.Redis]:
    client = connect(infra.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def stream(infra: Infra) -> str:
    return f"{infra.prefix}consumer-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'consumer.db'}")
    ProcessedEvent.__table__.create(engine)  # type: ignore[attr-defined]
    return engine


class Running:
    """One consumer run in the background; `applied` fires once per event after its commit."""

    def __init__(self, consumer: StreamConsumer) -> None:
        self.consumer = consumer
        self.stop = asyncio.Event()
        self.committed: dict[str, asyncio.Event] = {}
        consumer.after_commit = lambda e: self.waiter(e.id).set()
        self.task = asyncio.create_task(consumer.run(self.stop))

    def waiter(self, event_id: str) -> asyncio.Event:
        return self.committed.setdefault(event_id, asyncio.Event())

    async def committed_event(self, event_id: str, timeout: float = 30) -> None:
        await asyncio.wait_for(self.waiter(event_id).wait(), timeout)

    async def close(self) -> None:
        self.stop.set()
        await self.task
        await self.consumer.broker.stop()


def consumer(
    redis: aioredis.Redis, engine: Engine, stream: str, url: str, **options: object
) -> StreamConsumer:
    return StreamConsumer(
        redis,
        engine,
        stream,
        GROUP,
        {TYPE: lambda _session, _event: None},
        broker=make_broker(url),
        block_ms=200,
        claim_idle_ms=1000,
        **options,  # type: ignore[arg-type]
    )


def processed(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(ProcessedEvent)).scalar_one())


async def test_a_group_lost_with_redis_data_is_recreated_at_0_and_reading_goes_on(
    infra: Infra, redis: aioredis.Redis, engine: Engine, stream: str
) -> None:
    running = Running(consumer(redis, engine, stream, infra.redis_url))
    try:
        first = event(1)
        await redis.xadd(stream, first.to_fields())
        await running.committed_event(first.id)

        # Redis lost its data: stream and group are gone. FastStream's reader meets NOGROUP
        # and stops itself for good; the event written meanwhile (a relay replaying its
        # outbox) and the ones after it are read only if the consumer starts it again.
        await redis.delete(stream)
        replayed = event(2)
        await redis.xadd(stream, replayed.to_fields())
        await running.committed_event(replayed.id)

        later = event(3)
        await redis.xadd(stream, later.to_fields())
        await running.committed_event(later.id)
        assert processed(engine) == 3
        assert running.consumer.reader.running and running.consumer.claimer.running
    finally:
        await running.close()


async def test_a_read_is_acknowledged_only_after_its_transaction_commits(
    infra: Infra, redis: aioredis.Redis, engine: Engine, stream: str
) -> None:
    in_transaction = threading.Event()
    release = threading.Event()

    def finish(_session: Session) -> None:
        # Runs inside the read's transaction, before its commit.
        in_transaction.set()
        assert release.wait(30), "the test released the transaction"

    # Written before the consumer starts: read only if the group is created at `0`
    # (FastStream alone creates a new group at `$`).
    events = [event(n) for n in range(5)]
    for e in events:
        await redis.xadd(stream, e.to_fields())
    running = Running(consumer(redis, engine, stream, infra.redis_url, finish=finish))
    try:
        assert await asyncio.to_thread(in_transaction.wait, 30), "the read reached its finish"
        pending = await redis.xpending(stream, GROUP)
        assert pending["pending"] == 5, "read, not yet acknowledged"
        assert processed(engine) == 0
        release.set()
        for e in events:
            await running.committed_event(e.id)
        assert (await redis.xpending(stream, GROUP))["pending"] == 0
        assert processed(engine) == 5
    finally:
        release.set()
        await running.close()


async def test_the_parser_reads_plain_fields_and_keeps_the_cloudevents_id(
    infra: Infra, redis: aioredis.Redis, engine: Engine, stream: str
) -> None:
    one, two = event(1), event(2)
    raw = {
        "type": "bstream",
        "channel": stream,
        "message_ids": [b"1-0", b"2-0"],
        "data": [
            {k.encode(): v.encode() for k, v in one.to_fields().items()},
            {k.encode(): v.encode() for k, v in two.to_fields().items()},
        ],
    }
    message = await consumer(redis, engine, stream, infra.redis_url)._parse(raw)
    assert message.message_id == one.id
    assert [h["id"] for h in message.batch_headers] == [one.id, two.id]
    assert message.body == [("1-0", one.to_fields()), ("2-0", two.to_fields())]
    assert CloudEvent.from_fields(message.body[1][1]) == two
