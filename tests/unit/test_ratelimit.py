"""The rate limit's windows: counted in Redis for all replicas, locally when Redis is away."""

from __future__ import annotations

import uuid

import redis

from shared.ratelimit import LocalWindows, SharedWindows
from tests.support import Infra

NOW = 1_800_000_010.0  # ten seconds into a minute


def test_a_local_window_refuses_past_the_limit_and_starts_afresh_each_minute() -> None:
    now = [NOW]
    windows = LocalWindows(2, clock=lambda: now[0])
    assert [windows.hit("k"), windows.hit("k"), windows.hit("k")] == [None, None, 50]
    assert windows.hit("other") is None
    now[0] += 60
    assert windows.hit("k") is None


def test_replicas_share_one_count_in_redis(infra: Infra) -> None:
    client = redis.Redis.from_url(infra.redis_url, decode_responses=True)
    namespace = f"test{uuid.uuid4().hex[:8]}"
    now = [NOW]
    replicas = [SharedWindows(client, namespace, 3, clock=lambda: now[0]) for _ in range(2)]
    hits = [replicas[i % 2].hit("credential") for i in range(4)]
    assert hits == [None, None, None, 50]
    [key] = client.keys(f"reechannel:ratelimit:{namespace}:*")
    assert 0 < client.ttl(key) <= 120  # the window leaves Redis by itself
    now[0] += 60
    assert replicas[1].hit("credential") is None
    client.delete(*client.keys(f"reechannel:ratelimit:{namespace}:*"))


def test_without_redis_each_replica_counts_alone_and_serves() -> None:
    # A real client to a port nothing listens on: the connection is refused.
    away = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    windows = SharedWindows(away, "gone", 2, clock=lambda: NOW)
    assert [windows.hit("k"), windows.hit("k"), windows.hit("k")] == [None, None, 50]
