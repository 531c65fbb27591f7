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
    """The earliest unapplied event time per application; `complete` False if not all known.

    The claim (`due_query` in store/claims.py) holds back an application's deliveries of
    events later than its earliest; while the backlog is not complete, every delivery of an
    application.
    """

    earliest: Mapping[str, datetime] = field(default_factory=dict)
    complete: bool = True


UNKNOWN = Backlog(complete=False)
# At most this many unfinished entries are remembered per stream; past it the backlog is
# unknown (the worker sends only deliveries of no application until the consumer catches up).
MAX_REMEMBERED = 50_000


class BacklogReader:
    """Reads the backlog of each (stream, group), remembering what it has read before.

    Stream entries never change, so each entry is fetched and parsed once: a pass reads
    only the entries added since the last pass (plus any pending entry not seen yet), and
    forgets those the group has finished. A burst of thousands of events therefore costs
    one read of each, not one read of the whole backlog per claim.
    """

    def __init__(self, streams: Iterable[tuple[str, str]], event_types: frozenset[str]):
        self.streams = list(streams)
        self.event_types = event_types
        self._seen: dict[tuple[str, str], _StreamCache] = {}

    async def read(self, redis: aioredis.Redis, limit: int) -> Backlog:
        """The backlog now; incomplete while more than `limit` entries are unread or unseen."""
        earliest: dict[str, datetime] = {}
        complete = True
        for key in self.streams:
            cache = self._seen.setdefault(key, _StreamCache())
            entries = await cache.unfinished(redis, *key, limit, self.event_types)
            if entries is None:
                complete = False
                continue
            for application_id, time in entries:
                if application_id not in earliest or time < earliest[application_id]:
                    earliest[application_id] = time
        return Backlog(earliest) if complete else UNKNOWN


# What one entry says for ordering: its application and event time, or None if it makes no
# message (another type, or malformed: that one goes to the dead-letter stream).
Fact = tuple[str, datetime] | None


def _entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass
class _StreamCache:
    # Facts of entries read so far, by entry id; `high` is the last id read in order.
    facts: dict[str, Fact] = field(default_factory=dict)
    high: str | None = None
    last_delivered: str = "0-0"

    async def unfinished(
        self,
        redis: aioredis.Redis,
        stream: str,
        group: str,
        limit: int,
        types: frozenset[str],
    ) -> list[tuple[str, datetime]] | None:
        try:
            groups = await redis.xinfo_groups(stream)
        except ResponseError:
            self.reset()
            return []  # no stream yet: nothing to wait for
        info = next((g for g in groups if g["name"] == group), None)
        if info is None:
            # The group is created when its consumer starts; until then the whole stream is
            # unread.
            self.reset()
            undelivered: Any = await redis.xrange(stream, min="-", max="+", count=limit + 1)
            if len(undelivered) > limit:
                return None
            return [f for _id, fields in undelivered if (f := _fact(fields, types)) is not None]
        delivered = str(info["last-delivered-id"])
        if _entry_key(delivered) < _entry_key(self.last_delivered):
            self.reset()  # the group was recreated (Redis lost its data): start again
        self.last_delivered = delivered
        if info.get("pending") == 0 and info.get("lag") == 0:
            # Redis 7 keeps both counts: nothing unread and nothing in flight.
            self.facts.clear()
            self.high = delivered
            return []
        # Read the group's position first (above): an entry delivered meanwhile is still
        # counted, either as undelivered (its id is past that position) or as pending.
        start = self.high if self.high and _entry_key(self.high) > _entry_key(delivered) else None
        start = start or delivered
        fresh: Any = await redis.xrange(stream, min="(" + start, max="+", count=limit + 1)
        for entry_id, fields in fresh[:limit]:
            self.facts[entry_id] = _fact(fields, types)
            self.high = entry_id
        pending: Any = await redis.xpending_range(stream, group, min="-", max="+", count=limit + 1)
        if len(pending) > limit:
            return None
        pending_ids = {str(row["message_id"]) for row in pending}
        missing = [i for i in pending_ids if i not in self.facts]
        if missing:
            pipe = redis.pipeline(transaction=False)
            for entry_id in missing:
                pipe.xrange(stream, min=entry_id, max=entry_id)
            for found in await pipe.execute():
                for entry_id, fields in found:
                    self.facts[entry_id] = _fact(fields, types)
        # Forget what the group has finished: delivered (at or before its position) and not
        # pending any more.
        done_up_to = _entry_key(delivered)
        for entry_id in [i for i in self.facts if i not in pending_ids]:
            if _entry_key(entry_id) <= done_up_to:
                del self.facts[entry_id]
        if len(fresh) > limit or len(self.facts) > MAX_REMEMBERED:
            return None  # more unread than one pass reads: the next pass goes on from `high`
        return [fact for fact in self.facts.values() if fact is not None]

    def reset(self) -> None:
        self.facts.clear()
        self.high = None
        self.last_delivered = "0-0"


def _fact(fields: Mapping[str, Any], types: frozenset[str]) -> Fact:
    if fields.get("type") not in types:
        return None
    try:
        application_id = json.loads(fields.get("data") or "{}").get("application_id")
        time = datetime.fromisoformat(str(fields.get("time")))
    except (ValueError, TypeError, AttributeError):
        return None  # a malformed entry makes no message; it goes to the dead-letter stream
    if not isinstance(application_id, str) or time.tzinfo is None:
        return None
    return application_id, time
