"""Events notify has not applied yet, so that no later webhook of their application overtakes them.

The database alone cannot keep an application's webhooks in order: an event still in a
stream (not yet read, or read by another replica and not yet committed, or failing and
waiting to be retried) has no message row yet, so the message after it would look like
the first. Before claiming deliveries the worker therefore asks Redis which entries its
consumer group has not finished (pending or not yet delivered) and holds back, per
application, every delivery whose event is later than the earliest such entry. An entry
leaves this backlog only after its handler's transaction has committed (the consumer
acknowledges after the commit), by which time its own deliveries are in the database
and the usual order rule there takes over.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError


@dataclass(frozen=True)
class Backlog:
    """The earliest unapplied event time per application; `complete` False if not all known."""

    earliest: Mapping[str, datetime] = field(default_factory=dict)
    complete: bool = True

    def holds_back(self, application_id: str | None, event_time: datetime) -> bool:
        """Whether a delivery of this application and event time must wait for the backlog."""
        if application_id is None:
            return False
        if not self.complete:
            return True
        first = self.earliest.get(application_id)
        return first is not None and first < event_time


UNKNOWN = Backlog(complete=False)


async def read_backlog(
    redis: aioredis.Redis,
    streams: Iterable[tuple[str, str]],
    event_types: frozenset[str],
    limit: int,
) -> Backlog:
    """The backlog of each (stream, group); incomplete when one holds more than `limit` entries."""
    earliest: dict[str, datetime] = {}
    for stream, group in streams:
        entries = await _unfinished(redis, stream, group, limit)
        if entries is None:
            return UNKNOWN
        for fields in entries:
            _note(earliest, fields, event_types)
    return Backlog(earliest)


async def _unfinished(
    redis: aioredis.Redis, stream: str, group: str, limit: int
) -> list[dict[str, Any]] | None:
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:
        return []  # no stream yet: nothing to wait for
    info = next((g for g in groups if g["name"] == group), None)
    if info is None:
        # The group is created when its consumer starts; until then the whole stream is unread.
        undelivered = await _entries(redis, stream, "-", "+", limit + 1)
        return None if len(undelivered) > limit else undelivered
    # Read the group's position first: an entry delivered meanwhile is still counted, either
    # as undelivered (its id is past that position) or as pending.
    after = "(" + info["last-delivered-id"]  # exclusive: that one was delivered
    undelivered = await _entries(redis, stream, after, "+", limit + 1)
    pending: Any = await redis.xpending_range(stream, group, min="-", max="+", count=limit + 1)
    if len(undelivered) > limit or len(pending) > limit:
        return None
    pipe = redis.pipeline(transaction=False)
    for row in pending:
        pipe.xrange(stream, min=row["message_id"], max=row["message_id"])
    for found in await pipe.execute():
        undelivered += [fields for _id, fields in found]
    return undelivered


async def _entries(
    redis: aioredis.Redis, stream: str, start: str, end: str, count: int
) -> list[dict[str, Any]]:
    found: Any = await redis.xrange(stream, min=start, max=end, count=count)
    return [fields for _id, fields in found]


def _note(earliest: dict[str, datetime], fields: Mapping[str, Any], types: frozenset[str]) -> None:
    if fields.get("type") not in types:
        return
    try:
        application_id = json.loads(fields.get("data") or "{}").get("application_id")
        time = datetime.fromisoformat(str(fields.get("time")))
    except (ValueError, TypeError, AttributeError):
        return  # a malformed entry makes no message; it goes to the dead-letter stream
    if not isinstance(application_id, str) or time.tzinfo is None:
        return
    if application_id not in earliest or time < earliest[application_id]:
        earliest[application_id] = time
