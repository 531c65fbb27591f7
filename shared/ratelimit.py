"""Requests per credential per minute: one count for all replicas of a service, in Redis.

A fixed one-minute window per credential. `SharedWindows` counts in Redis (one pipelined
INCRBY and EXPIRE, one round trip), so N replicas of a service give a credential the limit
once, not N times. If Redis does not answer, the request is not refused for it: the replica
counts on its own (`LocalWindows`) and leaves Redis alone for a few seconds before trying it
again, so an outage costs the hot path one failed round trip, not one a request. (Intake
keeps accepting applications while Redis is away: tests/integration/test_nothing_lost.py.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

KEY_PREFIX = "reechannel:ratelimit:"
# What `SharedWindows` runs (shared/redis_acl.py grants them on each service's keys).
COMMANDS = ("incrby", "expire")
WINDOW_SECONDS = 60
# After Redis failed to answer, how long a replica counts on its own before asking again.
REDIS_PAUSE_SECONDS = 5.0


class RateLimiter(Protocol):
    def hit(self, key: str) -> int | None:
        """Count one request; seconds to wait when over the limit, else None."""


def _wait(now: float) -> int:
    return max(1, int(WINDOW_SECONDS - now % WINDOW_SECONDS))


class LocalWindows:
    """The window counted by this process alone."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.time) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._windows: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> int | None:
        now = self.clock()
        window = int(now // WINDOW_SECONDS)
        with self._lock:
            current, count = self._windows.get(key, (window, 0))
            if current != window:
                current, count = window, 0
            count += 1
            self._windows[key] = (current, count)
            if len(self._windows) > 100_000:
                self._windows = {k: v for k, v in self._windows.items() if v[0] == window}
        return _wait(now) if count > self.per_minute else None


class SharedWindows:
    """The window counted in Redis for every replica of one service."""

    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        per_minute: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.prefix = f"{KEY_PREFIX}{namespace}:"
        self.per_minute = per_minute
        self.clock = clock
        self.fallback = LocalWindows(per_minute, clock)
        self._paused_until = 0.0

    def hit(self, key: str) -> int | None:
        now = self.clock()
        if now < self._paused_until:
            return self.fallback.hit(key)
        name = f"{self.prefix}{key}:{int(now // WINDOW_SECONDS)}"
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.incrby(name, 1)
            pipe.expire(name, 2 * WINDOW_SECONDS, nx=True)
            count, _ = pipe.execute()
        except RedisError as exc:
            self._paused_until = now + REDIS_PAUSE_SECONDS
            log.warning("rate limit: Redis did not answer (%r); counting in this process", exc)
            return self.fallback.hit(key)
        return _wait(now) if int(count) > self.per_minute else None
