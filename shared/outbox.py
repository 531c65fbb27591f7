"""Transactional outbox: events are written with the state change and relayed to Redis later."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import Index, Row, Select, bindparam, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, func, select

from shared import tracing
from shared.db import IN_INDEX_ORDER, is_sqlite, session_scope, utcnow
from shared.events import EVENT_STREAMS, CloudEvent
from shared.metrics import OUTBOX_LAG, OUTBOX_RELAYED

log = logging.getLogger(__name__)


class OutboxEvent(SQLModel, table=True):
    """An event waiting to be published (published_at empty) or already on its stream."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unpublished", "published_at", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64, unique=True)
    stream: str = Field(max_length=100)
    event_type: str = Field(max_length=100)
    fields_json: str
    created_at: datetime = Field(default_factory=utcnow)
    published_at: datetime | None = None
    stream_id: str | None = Field(default=None, max_length=40)


class ProcessedEvent(SQLModel, table=True):
    """An event a consumer group has applied; recorded in the same transaction as its effect."""

    __tablename__ = "processed_events"
    # Pruning walks the oldest records (shared/pruning.py).
    __table_args__ = (Index("ix_processed_events_time", "processed_at"),)

    consumer_group: str = Field(primary_key=True, max_length=100)
    event_id: str = Field(primary_key=True, max_length=64)
    processed_at: datetime = Field(default_factory=utcnow)


OUTBOX_TABLES = ("outbox", "processed_events")


def add_event(session: Session, event: CloudEvent) -> None:
    """Stage an event in the caller's transaction; it exists only if that transaction commits.

    The event carries the trace context of the span it is written in (a request's, or the
    handling of the event that caused it), unless it names one already.
    """
    if event.traceparent is None and (traceparent := tracing.current_traceparent()):
        event = event.model_copy(update={"traceparent": traceparent})
    session.add(
        OutboxEvent(
            event_id=event.id,
            stream=EVENT_STREAMS[event.type],
            event_type=event.type,
            fields_json=json.dumps(event.to_fields()),
        )
    )


# KEYS: the lock, the memory key; ARGV: this relay's token, the lock's time to live (ms). Takes
# the lock or, when this relay holds it already, extends it. Returns 0 when another relay holds
# it, else 2 when Redis remembers what was published and 1 when it does not (restarted without
# its data).
_ACQUIRE = """
local holder = redis.call('get', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('exists', KEYS[2]) == 1 then return 2 end
return 1
"""
# KEYS: the lock; ARGV: token, time to live (ms). Extends the lock only while this relay holds it.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
# Releases the lock only if this relay still holds it.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class OutboxRelay:
    """Moves committed outbox rows to their Redis streams in order; survives Redis outages."""

    def __init__(
        self,
        engine: Engine,
        redis: aioredis.Redis,
        lock_name: str,
        batch: int = 200,
        poll_seconds: float = 0.5,
        stream_prefix: str = "",
        replay_hours: float = 72.0,
        min_interval: float = 0.02,
        lock_ms: int = 3000,
    ) -> None:
        self.engine = engine
        self.redis = redis
        self.lock_key = f"reechannel:outbox-lock:{lock_name}"
        # Present while Redis remembers what this outbox published; gone after a restart
        # without persistence, when the recent events must be published again.
        self.memory_key = f"reechannel:outbox-memory:{lock_name}"
        self.replay_hours = replay_hours
        self.batch = batch
        self.stream_prefix = stream_prefix
        self.poll_seconds = poll_seconds
        # After a pass that moved events, the next waits at least this long, so that under load
        # one pass carries the events of many requests instead of one pass per request.
        self.min_interval = min_interval
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._token = uuid.uuid4().hex
        # A pass holds the lock for milliseconds and releases it; the time to live only matters
        # when a process dies mid-pass, when it is how long the replacement waits. A pass that
        # runs long (a replay, a slow database) renews the lock every third of it.
        self.lock_ms = lock_ms
        self._renewal: asyncio.TimerHandle | None = None
        self._renewing: asyncio.Future[None] | None = None
        self.healthy = False

    def wake(self) -> None:
        """Ask for a relay pass now; callable from any thread (request handlers run in threads)."""
        # Once asked, asking again changes nothing: skip waking the event loop again.
        loop = self._loop
        if loop is None or self._wake.is_set():
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._wake.set()  # an async route: no need to go through the loop's wake-up pipe
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        backoff = 0.5
        while not stop.is_set():
            delay = self.poll_seconds
            # Cleared before the pass: a commit during the pass asks for the next one.
            self._wake.clear()
            moved = 0
            try:
                moved = await self.relay_once()
                self.healthy = True
                backoff = 0.5
                if moved >= self.batch:
                    continue
            except Exception as exc:  # Redis or the database is down: keep the rows, retry later.
                self.healthy = False
                delay, backoff = backoff, min(backoff * 2, 10.0)
                log.warning("outbox relay: %s; retrying in %.1fs", exc, delay)
            if moved and self.min_interval > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.min_interval)
            if stop.is_set():
                break
            if self.healthy and self._wake.is_set():
                continue
            waiters = [asyncio.ensure_future(stop.wait())]
            if self.healthy:
                # New commits cut the poll short; during an outage only the backoff counts.
                waiters.append(asyncio.ensure_future(self._wake.wait()))
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()

    async def relay_once(self) -> int:
        """Publish one batch. Returns how many rows were moved."""
        # One relay at a time per database keeps the stream in commit order across replicas.
        # Taking (or extending) the lock and asking whether Redis still remembers what was
        # published is one round trip.
        state = await self.redis.eval(
            _ACQUIRE, 2, self.lock_key, self.memory_key, self._token, self.lock_ms
        )
        if not state:
            return 0
        self._schedule_renewal()
        try:
            if int(state) == 1:
                replayed = await asyncio.to_thread(self._unmark_recent)
                if replayed:
                    log.warning("Redis lost its data: publishing %d recent events again", replayed)
                await self.redis.set(self.memory_key, utcnow().isoformat())
            rows = await asyncio.to_thread(self._unpublished)
            if not rows:
                OUTBOX_LAG.set(0)
                return 0
            pipe = self.redis.pipeline(transaction=False)
            for row in rows:
                pipe.xadd(self.stream_prefix + row.stream, json.loads(row.fields_json))
            stream_ids = await pipe.execute()
            await asyncio.to_thread(self._mark_published, rows, stream_ids)
            OUTBOX_RELAYED.inc(len(rows))
            OUTBOX_LAG.set((utcnow() - _aware(rows[0].created_at)).total_seconds())
            return len(rows)
        finally:
            self._cancel_renewal()
            await self.redis.eval(_RELEASE, 1, self.lock_key, self._token)

    def _schedule_renewal(self) -> None:
        # A timer, not a task: most passes end long before it fires, and cancelling it is free.
        loop = asyncio.get_running_loop()
        self._renewal = loop.call_later(self.lock_ms / 3000, self._renew_in_background)

    def _renew_in_background(self) -> None:
        # Kept until done: the loop holds only a weak reference to a task.
        self._renewing = asyncio.ensure_future(self._renew())
        self._schedule_renewal()

    async def _renew(self) -> None:
        try:
            await self.redis.eval(_RENEW, 1, self.lock_key, self._token, self.lock_ms)
        except Exception as exc:  # the pass itself will fail on the same outage and retry
            log.warning("outbox relay: could not renew its lock: %s", exc)

    def _cancel_renewal(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            self._renewal = None

    def _unmark_recent(self) -> int:
        """Mark events published within the replay window as unpublished (consumers dedupe)."""
        since = utcnow() - timedelta(hours=self.replay_hours)
        with session_scope(self.engine) as session:
            result = session.execute(
                update(OutboxEvent)
                .where(col(OutboxEvent.published_at).is_not(None))
                .where(col(OutboxEvent.created_at) >= since)
                .values(published_at=None, stream_id=None)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def _unpublished(self) -> Sequence[Row[Any]]:
        with self.engine.begin() as conn:
            if not is_sqlite(self.engine):
                conn.execute(IN_INDEX_ORDER)
            return conn.execute(unpublished_query(self.batch)).all()

    def _mark_published(self, rows: Sequence[Row[Any]], stream_ids: list[object]) -> None:
        # One statement for the batch, sent as one executemany (pipelined by psycopg).
        outbox = OutboxEvent.__table__  # type: ignore[attr-defined]
        statement = (
            update(outbox)
            .where(outbox.c.seq == bindparam("row_seq"))
            .values(published_at=bindparam("now"), stream_id=bindparam("sid"))
        )
        now = utcnow()
        params = [
            {
                "row_seq": row.seq,
                "now": now,
                "sid": stream_id.decode() if isinstance(stream_id, bytes) else str(stream_id),
            }
            for row, stream_id in zip(rows, stream_ids, strict=True)
        ]
        with self.engine.begin() as conn:
            conn.execute(statement, params)

    def pending_count(self) -> int:
        with Session(self.engine) as session:
            query = select(func.count()).where(col(OutboxEvent.published_at).is_(None))
            return int(session.exec(query).one())


def unpublished_query(batch: int) -> Select[Any]:
    """The oldest unpublished events, in order: run with `IN_INDEX_ORDER` on PostgreSQL.

    It must walk ix_outbox_unpublished in order and stop at the batch. On stale statistics
    the planner chose a bitmap scan of every row ever published (their dead versions) and a
    sort: after 35,000 events a look took 11.6 ms, fifty times a second. Ordered by seq alone
    (with sorting off) it walked the primary key through every published row instead (10 ms).
    Every row here has no published_at, so ordering by (published_at, seq) is seq order, and
    that index's order: the one plan left without a sort. Only the columns the relay uses,
    through Core: rows, not ORM objects.
    """
    outbox = OutboxEvent.__table__  # type: ignore[attr-defined]
    return (
        sa_select(outbox.c.seq, outbox.c.stream, outbox.c.fields_json, outbox.c.created_at)
        .where(outbox.c.published_at.is_(None))
        .order_by(outbox.c.published_at, outbox.c.seq)
        .limit(batch)
    )


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
