"""Stream consumer: at-least-once reads, exactly-once effects, reclaim, dead letters.

Reads with XREADGROUP in one consumer group per service and one consumer name per process.
An entry is acknowledged only after the handler's transaction, which also records the event
id, has committed; a duplicate is recognised by that record and acknowledged without effect.
The entries of one read are applied in stream order in ONE transaction (one commit, one
XACK for the lot); if any of them fails, that transaction is rolled back and the entries
are applied one by one, so a failing entry stays pending alone and the others go through.
A service may load in one query what its handlers will look up one by one, in a `prepare`
hook run before them, and collect in its handlers and write the whole read at once in a
`finish` hook run after them, both in the same transaction. Entries left pending by a
crashed or failing consumer are claimed with XAUTOCLAIM once idle; an entry delivered
`max_deliveries` times goes to `<stream>.dlq` with its error, and so does at once an entry
whose CloudEvents `source` is not the stream's producer (it is never applied).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import bindparam, insert
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from shared.db import session_scope, utcnow
from shared.events import CloudEvent
from shared.metrics import CONSUMER_LAG, DLQ_SIZE, EVENTS_CONSUMED, EVENTS_DEAD_LETTERED
from shared.outbox import ProcessedEvent

log = logging.getLogger(__name__)

Handler = Callable[[Session, CloudEvent], None]
# Called once per transaction, before the handlers, with the events they are about to apply
# (duplicates left out): a service loads the rows its handlers will look up, in one query.
Prepare = Callable[[Session, list[CloudEvent]], None]
# Called once per transaction, after the handlers of its events and before the commit: a
# service whose handlers only collect (in `session.info`) writes a whole read at once here.
Finish = Callable[[Session], None]
AfterCommit = Callable[[CloudEvent], None]


_PROCESSED: Any = ProcessedEvent.__table__  # type: ignore[attr-defined]
_ALREADY_PROCESSED = sa_select(_PROCESSED.c.event_id).where(
    _PROCESSED.c.consumer_group == bindparam("group"),
    _PROCESSED.c.event_id.in_(bindparam("ids", expanding=True)),
)
_RECORD_PROCESSED = insert(_PROCESSED).values(
    consumer_group=bindparam("consumer_group"),
    event_id=bindparam("event_id"),
    processed_at=bindparam("at"),
)


# KEYS: the stream, its dead-letter stream, the group's errors hash; ARGV: the group, the
# entry id, then the dead letter's fields and values. Acknowledging, writing the dead letter
# and forgetting the error happen together or not at all, and only for an entry still
# pending: a consumer that crashes half-way, or two that dead-letter the same entry, leave
# it on the dead-letter stream once.
_DEAD_LETTER = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
"""


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def dlq_stream(stream: str) -> str:
    return f"{stream}.dlq"


def _errors_key(stream: str, group: str) -> str:
    return f"{stream}.errors:{group}"


async def ensure_group(redis: aioredis.Redis, stream: str, group: str) -> None:
    """Create the group at the start of the stream, so a new service reads the whole backlog."""
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class StreamConsumer:
    """Applies the events of one stream to one service's database, through typed handlers."""

    def __init__(
        self,
        redis: aioredis.Redis,
        engine: Engine,
        stream: str,
        group: str,
        handlers: dict[str, Handler],
        *,
        batch: int = 50,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        max_deliveries: int = 5,
        after_commit: AfterCommit | None = None,
        prepare: Prepare | None = None,
        finish: Finish | None = None,
        name: str | None = None,
        producer: str | None = None,
    ) -> None:
        self.redis = redis
        self.engine = engine
        self.stream = stream
        self.group = group
        self.handlers = handlers
        self.batch = batch
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self.after_commit = after_commit
        self.prepare = prepare
        self.finish = finish
        self.name = name or consumer_name()
        # The `source` of the stream's producing service; entries of any other are refused.
        self.producer = producer
        self.healthy = False

    async def run(self, stop: asyncio.Event) -> None:
        """Read new entries and, between reads, reclaim idle ones, until `stop` is set."""
        delay = 0.2
        last_claim = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                await ensure_group(self.redis, self.stream, self.group)
                while not stop.is_set():
                    if loop.time() - last_claim >= self.claim_idle_ms / 2000:
                        await self.reclaim_once()
                        last_claim = loop.time()
                    await self.read_once()
                    self.healthy = True
                    delay = 0.2
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    # Redis came back empty: the group is recreated at the top of the loop.
                    log.warning("%s/%s: group missing, recreating", self.stream, self.group)
                    continue
                self.healthy = False
                log.exception("%s/%s: redis error", self.stream, self.group)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self.healthy = False
                log.warning("%s/%s: redis unavailable (%s)", self.stream, self.group, exc)
            if stop.is_set():
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def read_once(self) -> int:
        reply: Any = await self.redis.xreadgroup(
            self.group, self.name, {self.stream: ">"}, count=self.batch, block=self.block_ms
        )
        entries = [entry for _stream, stream_entries in reply or [] for entry in stream_entries]
        read = len(entries)
        entries = await self._refuse_foreign(entries)
        if len(entries) == 1:
            await self._deliver(*entries[0])
        elif entries:
            await self._deliver_batch(entries)
        return read

    async def reclaim_once(self) -> int:
        """Claim entries idle past `claim_idle_ms` from any consumer; dead-letter the hopeless."""
        reply = await self.redis.xautoclaim(
            self.stream, self.group, self.name, self.claim_idle_ms, "0-0", count=self.batch
        )
        claimed = reply[1]
        deleted = reply[2] if len(reply) > 2 else []
        if deleted:
            await self._acknowledge(*deleted)
        for entry_id, fields in claimed:
            if not fields:
                await self._acknowledge(entry_id)
                continue
            info = await self.redis.xpending_range(
                self.stream, self.group, min=entry_id, max=entry_id, count=1
            )
            deliveries = int(info[0]["times_delivered"]) if info else 1
            if (foreign := self._foreign(fields)) is not None:
                await self._dead_letter(entry_id, fields, deliveries, foreign)
            elif deliveries > self.max_deliveries:
                await self._dead_letter(entry_id, fields, deliveries)
            else:
                # A reclaimed entry may have failed before: its error goes when it is applied.
                await self._deliver(entry_id, fields, retried=True)
        await self._report_sizes()
        return len(claimed)

    async def _deliver_batch(self, entries: list[tuple[Any, dict[Any, Any]]]) -> None:
        """Apply a read's entries in one transaction; one by one if that transaction fails."""
        try:
            events = [CloudEvent.from_fields(fields) for _entry_id, fields in entries]
            applied = await asyncio.to_thread(self._apply_all, events)
        except Exception as exc:
            log.info(
                "%s/%s: batch of %d failed (%r); one by one",
                self.stream,
                self.group,
                len(entries),
                exc,
            )
            for entry_id, fields in entries:
                await self._deliver(entry_id, fields)
            return
        await self.redis.xack(self.stream, self.group, *[entry_id for entry_id, _ in entries])
        for event, done in zip(events, applied, strict=True):
            EVENTS_CONSUMED.labels(self.stream, self.group, "applied" if done else "skipped").inc()
            if done and self.after_commit is not None:
                self.after_commit(event)

    def _foreign(self, fields: dict[Any, Any]) -> str | None:
        """Why an entry is not its stream's producer's (issue 17, F4), or None if it is."""
        source = fields.get("source")
        if self.producer is None or source == self.producer:
            return None
        return f"source {source!r} is not {self.producer!r}, the producer of {self.stream}"

    async def _refuse_foreign(
        self, entries: list[tuple[Any, dict[Any, Any]]]
    ) -> list[tuple[Any, dict[Any, Any]]]:
        """Dead-letter at once the entries of another producer; return the others."""
        kept = []
        for entry_id, fields in entries:
            if (foreign := self._foreign(fields)) is not None:
                await self._dead_letter(entry_id, fields, 1, foreign)
            else:
                kept.append((entry_id, fields))
        return kept

    async def _acknowledge(self, *entry_ids: Any) -> None:
        """XACK entries and forget any error recorded for them, in one transaction."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(self.stream, self.group, *entry_ids)
        pipe.hdel(_errors_key(self.stream, self.group), *entry_ids)
        await pipe.execute()

    async def _deliver(self, entry_id: Any, fields: dict[Any, Any], retried: bool = False) -> None:
        try:
            event = CloudEvent.from_fields(fields)
            applied = await asyncio.to_thread(self._apply, event)
        except Exception as exc:
            # Left pending on purpose: it is retried when reclaimed, dead-lettered after N tries.
            EVENTS_CONSUMED.labels(self.stream, self.group, "error").inc()
            log.warning("%s/%s: entry %r failed: %r", self.stream, self.group, entry_id, exc)
            await self.redis.hset(_errors_key(self.stream, self.group), entry_id, repr(exc)[:2000])
            return
        if retried:
            await self._acknowledge(entry_id)
        else:
            # Read for the first time: no error can have been recorded for it.
            await self.redis.xack(self.stream, self.group, entry_id)
        EVENTS_CONSUMED.labels(self.stream, self.group, "applied" if applied else "skipped").inc()
        if applied and self.after_commit is not None:
            self.after_commit(event)

    def _apply(self, event: CloudEvent) -> bool:
        """Run the handler and record the event id in one transaction. False if nothing to do."""
        try:
            return self._apply_all([event])[0]
        except IntegrityError:
            # Another consumer applied the same event at the same moment; its effect stands.
            with Session(self.engine) as session:
                if session.get(ProcessedEvent, (self.group, event.id)) is not None:
                    return False
            raise

    def _apply_all(self, events: list[CloudEvent]) -> list[bool]:
        """`_apply` for several events in one transaction; raises if any of them fails."""
        wanted = [e.id for e in events if e.type in self.handlers]
        applied: list[bool] = []
        recorded: list[dict[str, Any]] = []
        now = utcnow()
        with session_scope(self.engine) as session:
            done = (
                set(
                    session.connection()
                    .execute(_ALREADY_PROCESSED, {"group": self.group, "ids": wanted})
                    .scalars()
                )
                if wanted
                else set()
            )
            todo: dict[str, CloudEvent] = {}
            for event in events:
                # The same event twice in one read is applied once.
                fresh = event.type in self.handlers and event.id not in done
                fresh = fresh and event.id not in todo
                applied.append(fresh)
                if fresh:
                    todo[event.id] = event
            if todo and self.prepare is not None:
                self.prepare(session, list(todo.values()))
            for event in todo.values():
                self.handlers[event.type](session, event)
                recorded.append({"consumer_group": self.group, "event_id": event.id, "at": now})
            if recorded:
                if self.finish is not None:
                    self.finish(session)
                # One statement for the read; a duplicate (another consumer was quicker)
                # violates the primary key and rolls the whole transaction back.
                session.execute(_RECORD_PROCESSED, recorded)
        return applied

    async def _dead_letter(
        self, entry_id: Any, fields: dict[Any, Any], deliveries: int, reason: str | None = None
    ) -> None:
        errors_key = _errors_key(self.stream, self.group)
        error = reason or await self.redis.hget(errors_key, entry_id)
        record = dict(fields)
        record.update(
            {
                "dlq_original_stream": self.stream,
                "dlq_original_id": entry_id,
                "dlq_group": self.group,
                "dlq_deliveries": str(deliveries),
                "dlq_error": error or "unknown",
                "dlq_at": utcnow().isoformat(),
            }
        )
        keys = [self.stream, dlq_stream(self.stream), errors_key]
        values = [v for pair in record.items() for v in pair]
        moved = await self.redis.eval(_DEAD_LETTER, len(keys), *keys, self.group, entry_id, *values)
        if not moved:
            return  # another consumer acknowledged it meanwhile
        EVENTS_DEAD_LETTERED.labels(self.stream).inc()
        log.error("%s/%s: entry %r dead-lettered: %s", self.stream, self.group, entry_id, error)

    async def _report_sizes(self) -> None:
        DLQ_SIZE.labels(self.stream).set(await self.redis.xlen(dlq_stream(self.stream)))
        for group in await self.redis.xinfo_groups(self.stream):
            name = group["name"].decode() if isinstance(group["name"], bytes) else group["name"]
            if name == self.group and group.get("lag") is not None:
                CONSUMER_LAG.labels(self.stream, self.group).set(int(group["lag"]))
