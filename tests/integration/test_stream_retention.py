"""Stream retention (shared/retention.py): what every group acknowledged leaves once old; an
unread or pending entry never does, whatever its age."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from shared.redis import connect
from shared.retention import trim_stream
from tests.integration.conftest import application, new_company
from tests.support import Infra, ServiceProcess, wait_until

GROUPS = ["fast", "slow"]


@pytest.fixture
async def redis(infra: Infra) -> AsyncIterator[aioredis.Redis]:
    client = connect(infra.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def stream(redis: aioredis.Redis) -> AsyncIterator[str]:
    name = f"t{uuid.uuid4().hex[:8]}_retention"
    for n in range(10):
        await redis.xadd(name, {"n": str(n)})
    for group in GROUPS:
        await redis.xgroup_create(name, group, id="0")
    yield name
    await redis.delete(name)


async def read(redis: aioredis.Redis, stream: str, group: str, count: int) -> list[str]:
    reply: Any = await redis.xreadgroup(group, "c1", {stream: ">"}, count=count)
    return [entry_id for _s, entries in reply or [] for entry_id, _f in entries]


async def remaining(redis: aioredis.Redis, stream: str) -> list[str]:
    return [fields["n"] for _id, fields in await redis.xrange(stream)]


async def test_only_what_every_group_acknowledged_leaves(
    redis: aioredis.Redis, stream: str
) -> None:
    await redis.xack(stream, "fast", *await read(redis, stream, "fast", 10))
    slow = await read(redis, stream, "slow", 8)
    await redis.xack(stream, "slow", *slow[:6])  # 6 and 7 pending, 8 and 9 unread
    assert await trim_stream(redis, stream, GROUPS, retention_seconds=0) == 6
    assert await remaining(redis, stream) == ["6", "7", "8", "9"]
    await redis.xack(stream, "slow", *slow[6:])
    await redis.xack(stream, "slow", *await read(redis, stream, "slow", 10))
    assert await trim_stream(redis, stream, GROUPS, retention_seconds=0) == 4
    assert await remaining(redis, stream) == []


async def test_a_stopped_groups_backlog_outlives_the_retention(
    redis: aioredis.Redis, stream: str
) -> None:
    await redis.xack(stream, "fast", *await read(redis, stream, "fast", 10))
    # "slow" has read nothing for longer than the retention (all ten entries are older than 0 s).
    assert await trim_stream(redis, stream, GROUPS, retention_seconds=0) == 0
    back = await read(redis, stream, "slow", 100)
    assert len(back) == 10, "the stopped group finds its whole backlog when it comes back"


async def test_entries_younger_than_the_retention_stay_though_acknowledged(
    redis: aioredis.Redis, stream: str
) -> None:
    for group in GROUPS:
        await redis.xack(stream, group, *await read(redis, stream, group, 10))
    assert await trim_stream(redis, stream, GROUPS, retention_seconds=3600) == 0
    later = time.time() + 3601
    assert await trim_stream(redis, stream, GROUPS, retention_seconds=3600, now=later) == 10


async def test_nothing_is_trimmed_while_an_expected_group_does_not_exist(
    redis: aioredis.Redis, stream: str
) -> None:
    for group in GROUPS:
        await redis.xack(stream, group, *await read(redis, stream, group, 10))
    assert await trim_stream(redis, stream, [*GROUPS, "never-started"], 0) == 0
    assert len(await remaining(redis, stream)) == 10


@pytest.mark.slow
def test_the_services_keep_their_streams_bounded(infra: Infra, tmp_path: Any) -> None:
    own = infra.isolated(tmp_path)
    env = own.env(REE_STREAM_RETENTION_SECONDS="0", REE_STREAM_TRIM_SECONDS="0.2")
    services = {n: ServiceProcess(n, env).start() for n in ("intake", "review", "notify")}
    try:
        company = new_company(own)
        with httpx.Client(base_url=services["intake"].url, timeout=20) as c:
            r = c.post(
                "/v1/applications",
                json=application(),
                headers={"Authorization": f"Bearer {company['api_key']}"},
            )
        assert r.status_code == 201
        r_sync = own.redis()
        # application.submitted is read by review and notify, case.opened by intake and notify;
        # once every group has acknowledged them, both streams are empty again.
        wait_until(lambda: r_sync.xlen(own.stream("review.events")) >= 0 and _opened(own))
        wait_until(
            lambda: (
                r_sync.xlen(own.stream("intake.events")) == 0
                and r_sync.xlen(own.stream("review.events")) == 0
            ),
            timeout=60,
            what="both streams trimmed",
        )
    finally:
        for service in services.values():
            service.stop()
        own.drop_schemas()


def _opened(own: Infra) -> bool:
    groups = own.redis().xinfo_groups(own.stream("review.events"))
    return any(int(g.get("entries-read") or 0) > 0 for g in groups)
