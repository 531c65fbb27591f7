"""Redis connections for the services: text replies, short timeouts, reconnect on demand."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from shared.config import CommonSettings


def connect(url: str, **options: str) -> aioredis.Redis:
    """An asyncio client; `options` are `CommonSettings.redis_options()` (user, password, CA)."""
    # Replies decoded to str: stream fields are JSON text by contract (ARCHITECTURE.md, events).
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=5,
        socket_timeout=15,
        health_check_interval=15,
        retry_on_timeout=True,
        **options,  # type: ignore[arg-type]
    )


def connect_with(settings: CommonSettings) -> aioredis.Redis:
    """The asyncio client a service process uses, as its settings say."""
    return connect(settings.redis_url, **settings.redis_options())


def connect_blocking(settings: CommonSettings) -> redis.Redis:
    """A blocking client for the operator's commands, with the same credentials and TLS."""
    return redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=5,
        **settings.redis_options(),
    )


def connect_hot_path(settings: CommonSettings) -> redis.Redis:
    """A blocking client for a request's own round trip (the shared rate limit), with short
    timeouts: a Redis that hangs costs a request half a second, not fifteen."""
    return redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        **settings.redis_options(),
    )
