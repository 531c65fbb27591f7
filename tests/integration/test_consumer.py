"""The stream consumer on FastStream, driven directly against a real Redis and a real database.

The services' tests (test_intake_projection.py, tests/faults/) prove the guarantees end to
end; these pin down what FastStream would do differently left to itself (stop reading when
the group disappears, acknowledge before the transaction commits, lose the CloudEvents id of
our plain-field entries), and what the consumer adds: entries of another producer refused,
a recorded error forgotten once its entry applies, dead letters written once.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from shared.config import CommonSettings
from shared.consumer import StreamConsumer, dlq_stream, make_broker
from shared.events import REVIEW_STREAM, STREAM_SOURCES, CaseOpened, CloudEvent, new_event
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
        broker=make_broker(CommonSettings(REDIS_URL=url)),
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


# --- producers, errors and dead letters ---------------------------------------------------

REVIEW_SOURCE = STREAM_SOURCES[REVIEW_STREAM]


def case_opened(source: str = REVIEW_SOURCE) -> CloudEvent:
    case_id = str(uuid.uuid4())
    opened = new_event(
        REVIEW_SOURCE,
        "case.opened",
        case_id,
        CaseOpened(
            case_id=case_id,
            application_id=str(uuid.uuid4()),
            reference="REE-2026-000001",
            company_id=str(uuid.uuid4()),
            state="eu_screening",
            priority_tier="P2",
        ),
    )
    return opened.model_copy(update={"source": source})


class Applied:
    """A handler that records the events it applied, and fails for those it is told to."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.failing: set[str] = set()

    def __call__(self, _session: Session, applied: CloudEvent) -> None:
        if applied.id in self.failing:
            raise RuntimeError(f"cannot apply {applied.id} yet")
        self.ids.append(applied.id)


def review_consumer(
    redis: aioredis.Redis, engine: Engine, stream: str, url: str, applied: Applied, **options: int
) -> StreamConsumer:
    """Intake's consumer of review's events: only review's entries are applied."""
    return StreamConsumer(
        redis,
        engine,
        stream,
        "intake",
        {"case.opened": applied},
        broker=make_broker(CommonSettings(REDIS_URL=url)),
        block_ms=50,
        claim_idle_ms=options.pop("claim_idle_ms", 200),
        producer=REVIEW_SOURCE,
        **options,  # type: ignore[arg-type]
    )


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    """Wait for `condition` (checked every 20 ms), failing with `what` after `timeout`."""
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)
    assert await condition(), what


async def dead_letters(redis: aioredis.Redis, stream: str) -> list[dict[str, str]]:
    return [fields for _id, fields in await redis.xrange(dlq_stream(stream))]


async def test_an_entry_of_another_producer_is_dead_lettered_with_the_reason_and_never_applied(
    infra: Infra, redis: aioredis.Redis, engine: Engine, stream: str
) -> None:
    applied = Applied()
    forged, genuine = case_opened(source="reechannel/intake"), case_opened()
    await redis.xadd(stream, forged.to_fields())
    await redis.xadd(stream, genuine.to_fields())
    running = Running(review_consumer(redis, engine, stream, infra.redis_url, applied))
    try:
        await running.committed_event(genuine.id)
        await until(lambda: _has_dead_letters(redis, stream, 1), "the forged entry dead-lettered")
        [letter] = await dead_letters(redis, stream)
        assert letter["id"] == forged.id
        assert "'reechannel/intake' is not 'reechannel/review'" in letter["dlq_error"]
        assert applied.ids == [genuine.id]
        assert (await redis.xpending(stream, "intake"))["pending"] == 0
    finally:
        await running.close()
        await redis.delete(dlq_stream(stream))


async def test_a_forged_entry_alone_in_its_read_is_not_applied_either(
    infra: Infra, redis: aioredis.Redis, engine: Engine, stream: str
) -> None:
    applied = Applied()
    forged = case_opened(source="attacker")
    await redis.xadd(stream, forged.to_fields())
    running = Running(review_consumer(redis, engine, stream, infra.redis_url, applied))
    try:
        await until(lambda: _has_dead_letters(redis, stream, 1), "the forged entry dead-lettered")
        assert [letter["id"] for letter in await dead_letters(redis, stream)] == [forged.id]
        assert applied.ids == []
    finally:
        await running.close()
        await redis.delete(dlq_stream(stream))


async def test_the_error_of_an_entry_that_finally_applied_is_forgotten(
    infra: Infra, redis: aioredis.Redis, engine: Engine, stream: str
) -> None:
    applied = Applied()
    failing = case_opened()
    applied.failing.add(failing.id)
    entry_id = await redis.xadd(stream, failing.to_fields())
    errors = f"{stream}.errors:intake"
    running = Running(
        review_consumer(redis, engine, stream, infra.redis_url, applied, max_deliveries=1000)
    )
    try:
        await until(lambda: _hash_has(redis, errors, entry_id), "the failure recorded")
        assert "cannot apply" in str(await redis.hget(errors, entry_id))
        applied.failing.clear()
        await running.committed_event(failing.id)
        assert applied.ids == [failing.id]
        assert await redis.hget(errors, entry_id) is None
        assert (await redis.xpending(stream, "intake"))["pending"] == 0
    finally:
        await running.close()
        await redis.delete(errors)


async def test_a_dead_lettered_entry_is_on_the_dead_letter_stream_once_and_no_longer_pending(
    infra: Infra, redis: aioredis.Redis, engine: Engine, stream: str
) -> None:
    applied = Applied()
    hopeless = case_opened()
    applied.failing.add(hopeless.id)
    entry_id = await redis.xadd(stream, hopeless.to_fields())
    consumer = review_consumer(redis, engine, stream, infra.redis_url, applied, max_deliveries=2)
    running = Running(consumer)
    try:
        await until(lambda: _has_dead_letters(redis, stream, 1), "the entry dead-lettered")
    finally:
        await running.close()
    [letter] = await dead_letters(redis, stream)
    assert letter["id"] == hopeless.id and "cannot apply" in letter["dlq_error"]
    assert (await redis.xpending(stream, "intake"))["pending"] == 0
    assert await redis.hget(f"{stream}.errors:intake", entry_id) is None
    # A second consumer that claimed the entry before it went dead-letters it too late: the
    # entry is no longer pending, so nothing is written again.
    await consumer._dead_letter(entry_id, hopeless.to_fields(), consumer.max_deliveries + 1)
    assert len(await dead_letters(redis, stream)) == 1
    assert applied.ids == []
    await redis.delete(dlq_stream(stream))


async def _has_dead_letters(redis: aioredis.Redis, stream: str, count: int) -> bool:
    return int(await redis.xlen(dlq_stream(stream))) >= count


async def _hash_has(redis: aioredis.Redis, key: str, field: str) -> bool:
    return bool(await redis.hexists(key, field))
