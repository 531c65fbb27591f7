"""The backlog notify's worker waits for, read from a real Redis stream and consumer group.

The reader remembers what it read between passes (each entry is fetched and parsed once), so
these tests drive it through the states a stream goes through: no stream, no group yet,
entries unread, read but pending, acknowledged, more unread than one pass reads, and a group
recreated after Redis lost its data.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from services.notify.backlog import BacklogReader
from shared.redis import connect
from tests.support import Infra

TYPES = frozenset({"case.state_changed"})
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
GROUP = "notify"


@pytest.fixture
async def redis(infra: Infra) -> AsyncIterator[aioredis.Redis]:
    client = connect(infra.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def stream(infra: Infra) -> str:
    return f"{infra.prefix}backlog-{uuid.uuid4().hex[:8]}"


def fields(application_id: str, minute: int, event_type: str = "case.state_changed") -> dict:
    return {
        "type": event_type,
        "time": (T0 + timedelta(minutes=minute)).isoformat(),
        "data": json.dumps({"application_id": application_id}),
    }


async def add(redis: aioredis.Redis, stream: str, *events: dict, ids: list[str] | None = None):
    added = []
    for n, event in enumerate(events):
        added.append(await redis.xadd(stream, event, id=ids[n] if ids else "*"))
    return added


async def read(redis: aioredis.Redis, stream: str, count: int) -> list[str]:
    reply = await redis.xreadgroup(GROUP, "c1", {stream: ">"}, count=count)
    return [entry_id for _s, entries in reply for entry_id, _f in entries]


async def test_no_stream_is_an_empty_backlog(redis: aioredis.Redis, stream: str) -> None:
    backlog = await BacklogReader([(stream, GROUP)], TYPES).read(redis, 100)
    assert backlog.complete and dict(backlog.earliest) == {}


async def test_a_stream_without_its_group_is_all_backlog(
    redis: aioredis.Redis, stream: str
) -> None:
    await add(redis, stream, fields("A", 2), fields("A", 1), fields("B", 5))
    backlog = await BacklogReader([(stream, GROUP)], TYPES).read(redis, 100)
    assert backlog.complete
    assert dict(backlog.earliest) == {
        "A": T0 + timedelta(minutes=1),
        "B": T0 + timedelta(minutes=5),
    }


async def test_entries_leave_the_backlog_when_acknowledged_not_when_read(
    redis: aioredis.Redis, stream: str
) -> None:
    await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    ids = await add(
        redis,
        stream,
        fields("A", 1),
        fields("A", 2),
        fields("B", 3),
        fields("C", 4, event_type="application.document_added"),  # makes no message
    )
    reader = BacklogReader([(stream, GROUP)], TYPES)
    first = await reader.read(redis, 100)
    assert first.complete
    assert dict(first.earliest) == {"A": T0 + timedelta(minutes=1), "B": T0 + timedelta(minutes=3)}

    assert await read(redis, stream, 2) == ids[:2]  # read, still pending
    pending = await reader.read(redis, 100)
    assert dict(pending.earliest) == dict(first.earliest)

    await redis.xack(stream, GROUP, ids[0])
    after_one = await reader.read(redis, 100)
    assert dict(after_one.earliest) == {
        "A": T0 + timedelta(minutes=2),
        "B": T0 + timedelta(minutes=3),
    }

    await read(redis, stream, 10)
    await redis.xack(stream, GROUP, *ids)
    done = await reader.read(redis, 100)
    assert done.complete and dict(done.earliest) == {}

    # A new event after all that is seen by the same reader.
    await add(redis, stream, fields("E", 7))
    assert dict((await reader.read(redis, 100)).earliest) == {"E": T0 + timedelta(minutes=7)}


async def test_more_unread_than_one_pass_reads_is_unknown_until_caught_up(
    redis: aioredis.Redis, stream: str
) -> None:
    await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    await add(redis, stream, *(fields(f"A{n}", n) for n in range(5)))
    reader = BacklogReader([(stream, GROUP)], TYPES)
    passes = [await reader.read(redis, 2) for _ in range(3)]
    assert [p.complete for p in passes] == [False, False, True]
    assert dict(passes[-1].earliest) == {f"A{n}": T0 + timedelta(minutes=n) for n in range(5)}
    # A fresh reader with a large enough pass sees the same.
    fresh = await BacklogReader([(stream, GROUP)], TYPES).read(redis, 100)
    assert dict(fresh.earliest) == dict(passes[-1].earliest)


async def test_a_recreated_group_is_read_again_from_the_start(
    redis: aioredis.Redis, stream: str
) -> None:
    await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    ids = await add(redis, stream, fields("A", 1), ids=["100-1"])
    await read(redis, stream, 10)
    await redis.xack(stream, GROUP, *ids)
    reader = BacklogReader([(stream, GROUP)], TYPES)
    assert dict((await reader.read(redis, 100)).earliest) == {}

    # Redis restarted empty: the stream starts again with lower ids, the group at 0.
    await redis.delete(stream)
    await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    await add(redis, stream, fields("B", 2), ids=["5-1"])
    assert dict((await reader.read(redis, 100)).earliest) == {"B": T0 + timedelta(minutes=2)}
