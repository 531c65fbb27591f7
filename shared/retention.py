"""Stream retention: entries every consumer group has acknowledged leave once they are old.

A stream entry may go when it is older than the retention and no group still needs it: every
group has read past it (its last-delivered id) and none holds it pending. A group that should
exist but does not (its service never started here) needs everything, so nothing is trimmed.
`XTRIM MINID` removes only entries below the id it is given, so an unread or pending entry, and
everything after it, always stays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

__all__ = ["StreamId", "first_needed", "trim_stream"]


class StreamId(tuple[int, int]):
    """A stream entry id (`<ms>-<seq>`), ordered as Redis orders them."""

    __slots__ = ()

    @classmethod
    def parse(cls, text: str | bytes) -> StreamId:
        raw = text.decode() if isinstance(text, bytes) else text
        ms, _, seq = raw.partition("-")
        return cls((int(ms), int(seq or 0)))

    def following(self) -> StreamId:
        return StreamId((self[0], self[1] + 1))

    def __str__(self) -> str:
        return f"{self[0]}-{self[1]}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def first_needed(
    redis: aioredis.Redis, stream: str, groups: Sequence[str]
) -> StreamId | None:
    """The oldest entry id any of `groups` may still need; None if one of them is missing."""
    try:
        infos = {_text(g["name"]): g for g in await redis.xinfo_groups(stream)}
    except aioredis.ResponseError as exc:  # no such stream: nothing to keep or trim
        if "no such key" in str(exc).lower():
            return None
        raise
    needed: list[StreamId] = []
    for group in groups:
        info = infos.get(group)
        if info is None:
            return None
        pending = await redis.xpending(stream, group)
        if int(pending["pending"]):
            needed.append(StreamId.parse(pending["min"]))
        else:
            needed.append(StreamId.parse(_text(info["last-delivered-id"])).following())
    return min(needed) if needed else None


async def trim_stream(
    redis: aioredis.Redis,
    stream: str,
    groups: Sequence[str],
    retention_seconds: float,
    now: float | None = None,
) -> int:
    """Remove the entries older than the retention that no group needs; how many went."""
    keep_from = await first_needed(redis, stream, groups)
    if keep_from is None:
        return 0
    now_ms = int((time.time() if now is None else now) * 1000)
    cutoff = StreamId((max(now_ms - int(retention_seconds * 1000), 0), 0))
    threshold = min(keep_from, cutoff)
    removed = int(await redis.xtrim(stream, minid=str(threshold), approximate=False))
    if removed:
        log.info("%s: %d entries past retention trimmed (kept from %s)", stream, removed, threshold)
    return removed
