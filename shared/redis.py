"""Redis connections for the services: text replies, short timeouts, reconnect on demand."""

from __future__ import annotations

import redis.asyncio as aioredis


def connect(url: str) -> aioredis.Redis:
    # Replies decoded to str: stream fields are JSON text by contract (ARCHITECTURE.md, events).
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=5,
        socket_timeout=15,
        health_check_interval=15,
        retry_on_timeout=True,
    )
