"""Stream consumer on FastStream: at-least-once reads, exactly-once effects, reclaim, dead letters.

Each stream a service reads has two FastStream subscribers in the service's group, under one
consumer name per process (ARCHITECTURE.md, "Facts about FastStream 0.7.8"): a reader
(`StreamSub(batch=True)`: XREADGROUP of up to `batch` new entries, one handler call a read)
and a claimer (`StreamSub(min_idle_time=...)`: XAUTOCLAIM of entries idle past
`claim_idle_ms`, one at a time). Both use `AckPolicy.MANUAL` and our parser, which reads the
plain CloudEvents fields of an entry (the contract: no FastStream envelope) and keeps the
CloudEvents `id` as the message id.

An entry is acknowledged only after the handler's transaction, which also records the event
id, has committed; a duplicate is recognised by that record and acknowledged without effect.
The entries of one read are applied in stream order in ONE transaction (one commit, one
XACK for the lot); if any of them fails, that transaction is rolled back and the entries
are applied one by one, so a failing entry stays pending alone and the others go through.
A service may load in one query what its handlers will look up one by one, in a `prepare`
hook run before them, and collect in its handlers and write the whole read at once in a
`finish` hook run after them, both in the same transaction. A claimed entry delivered more
than `max_deliveries` times goes to `<stream>.dlq` with its error, and so does at once an entry
whose CloudEvents `source` is not the stream's producer (it is never applied).

FastStream creates a missing group at `$` (only new entries) when a subscriber first starts,
and stops a subscriber for good when its group disappears (NOGROUP: Redis restarted empty).
`StreamConsumer.run` therefore supervises both subscribers: it creates the group at `0`
itself before starting them, and when one stops it recreates the group at `0` and starts it
again, so the replayed outboxes are read and the process carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import redis.asyncio as aioredis
from faststream import AckPolicy
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.message import RedisBatchStreamMessage as BatchMessage
from faststream.redis.message import RedisStreamMessage as SingleMessage
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import bindparam, insert
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from shared import logs, tracing
from shared.config import CommonSettings
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
# One stream entry as our parser hands it on: its id and its fields, both as text.
Entry = tuple[str, dict[str, str]]


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


def make_broker(settings: CommonSettings) -> RedisBroker:
    """The FastStream broker of one process: its own connection (replies as bytes, which our
    parser decodes), per-message logs at DEBUG (a line per event would cost more than the
    event), and up to 10 s for in-flight reads to finish when the service stops.

    Without FastDepends (`apply_types=False`) a handler is called with what the decoder
    returns, here the message itself: nothing is injected or validated, and a read costs
    less (the handlers validate each event themselves, `CloudEvent.from_fields`).

    It connects as the service's Redis user, with the same credentials and TLS as its own
    client (shared/redis.py): the URL's, and those the settings add."""
    options: dict[str, Any] = settings.redis_options()
    return RedisBroker(
        settings.redis_url,
        **options,
        logger=log,
        log_level=logging.DEBUG,
        graceful_timeout=10.0,
        apply_types=False,
    )


def read_entries(raw: Mapping[str, Any]) -> list[Entry]:
    """The entries of one FastStream stream message (one entry, or a batch read), as text.

    FastStream's connection answers bytes; decoding here, in one comprehension an entry, is
    the consumer's main cost per event beyond the database (a helper called per field cost
    a third more CPU per event). An entry deleted from the stream while pending comes back
    from XAUTOCLAIM without fields (Redis 6.2): it is kept, with empty fields, so that it is
    acknowledged.
    """
    ids = raw["message_ids"]
    data = raw["data"] if raw["type"] == "bstream" else [raw["data"]]
    return [
        (entry_id.decode(), {k.decode(): v.decode() for k, v in fields.items()} if fields else {})
        for entry_id, fields in zip(ids, data, strict=True)
    ]


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
        broker: RedisBroker,
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
        self.healthy = False
        # The `source` of the stream's producing service; entries of any other are refused.
        self.producer = producer
        self.broker = broker
        self._changed = asyncio.Event()
        self.reader: Any = broker.subscriber(
            stream=StreamSub(
                stream,
                group=group,
                consumer=self.name,
                batch=True,
                max_records=batch,
                polling_interval=block_ms,
            ),
            ack_policy=AckPolicy.MANUAL,
            parser=self._parse,
            decoder=_message,
            title=f"{stream}:{group}:read",
        )
        self.reader(self._on_read)
        # Between two XAUTOCLAIM rounds that found nothing the claimer waits this long, as
        # our own loop did (half the idle time an entry needs to be claimed).
        self.claimer: Any = broker.subscriber(
            stream=StreamSub(
                stream,
                group=group,
                consumer=self.name,
                min_idle_time=claim_idle_ms,
                polling_interval=max(claim_idle_ms // 2, 1),
            ),
            ack_policy=AckPolicy.MANUAL,
            parser=self._parse,
            decoder=_message,
            title=f"{stream}:{group}:claim",
        )
        self.claimer(self._on_claimed)

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the reader and the claimer running until `stop` is set; report sizes."""
        delay = 0.2
        loop = asyncio.get_running_loop()
        last_report = 0.0
        subscribers = (self.reader, self.claimer)
        try:
            while not stop.is_set():
                try:
                    await self.broker.connect()
                    if not all(s.running for s in subscribers):
                        # First start, or a subscriber stopped itself on NOGROUP: the group
                        # is (re)created at `0` before FastStream would create it at `$`.
                        await ensure_group(self.redis, self.stream, self.group)
                        for subscriber in subscribers:
                            if not subscriber.running:
                                log.info(
                                    "%s/%s: starting %s",
                                    self.stream,
                                    self.group,
                                    subscriber.specification.call_name,
                                )
                                await subscriber.start()
                                self._watch(subscriber)
                    if loop.time() - last_report >= self.claim_idle_ms / 2000:
                        await self._report_sizes()
                        last_report = loop.time()
                    self.healthy = True
                    delay = 0.2
                    await self._wait(stop, self.claim_idle_ms / 2000)
                    continue
                except ResponseError:
                    self.healthy = False
                    log.exception("%s/%s: redis error", self.stream, self.group)
                except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError) as exc:
                    self.healthy = False
                    log.warning("%s/%s: redis unavailable (%r)", self.stream, self.group, exc)
                if stop.is_set():
                    break
                await self._wait(stop, delay)
                delay = min(delay * 2, 5.0)
        finally:
            self.healthy = False
            for subscriber in subscribers:
                # Waits for an in-flight read to finish; what it did not acknowledge stays
                # pending for the next consumer.
                await subscriber.stop()

    def _watch(self, subscriber: Any) -> None:
        """Wake `run` as soon as the subscriber's read task ends (it stops on NOGROUP)."""
        for task in subscriber.tasks:
            task.add_done_callback(lambda _task: self._changed.set())

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        """Wait until `stop`, a subscriber's end, or `seconds`, whichever comes first."""
        self._changed.clear()
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._changed.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _parse(self, raw: Any) -> SingleMessage | BatchMessage:
        """Build FastStream's message from our plain fields; the CloudEvents id is its id."""
        entries = read_entries(raw)
        headers = [{k: v for k, v in fields.items() if k != "data"} for _id, fields in entries]
        first = headers[0] if headers else {}
        message_id = first.get("id") or (entries[0][0] if entries else None)
        cls = BatchMessage if raw["type"] == "bstream" else SingleMessage
        return cls(
            raw_message=raw,
            body=entries,
            headers=first,
            batch_headers=headers,
            content_type="application/cloudevents",
            message_id=message_id,
            correlation_id=message_id,
            # Acknowledged on our connection (FastStream's protocol names bytes replies; the
            # calls it makes, XACK, XDEL and XPENDING, are the same on ours).
            consumer=cast(Any, self.redis),
            group=self.group,
        )

    async def _on_read(self, message: BatchMessage) -> None:
        entries = await self._refuse_foreign(cast(list[Entry], message.body))  # `_parse`'s
        if len(entries) == 1:
            await self._deliver(*entries[0])
        elif entries:
            await self._deliver_batch(entries, message.ack)

    async def _on_claimed(self, message: SingleMessage) -> None:
        """An entry idle past `claim_idle_ms`: retried, or dead-lettered if hopeless."""
        for entry_id, fields in cast(list[Entry], message.body):
            if not fields:
                await self._acknowledge(entry_id)
                continue
            deliveries = await message.get_delivery_count()
            if (foreign := self._foreign(fields)) is not None:
                await self._dead_letter(entry_id, fields, deliveries, foreign)
            elif deliveries > self.max_deliveries:
                await self._dead_letter(entry_id, fields, deliveries)
            else:
                # A reclaimed entry may have failed before: its error goes when it is applied.
                await self._deliver(entry_id, fields, retried=True)

    async def _deliver_batch(
        self, entries: list[Entry], ack: Callable[[], Awaitable[None]]
    ) -> None:
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
        # XACK of the whole read, only now that its transaction has committed.
        await ack()
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
        event: CloudEvent | None = None
        try:
            event = CloudEvent.from_fields(fields)
            applied = await asyncio.to_thread(self._apply, event)
        except Exception as exc:
            # Left pending on purpose: it is retried when reclaimed, dead-lettered after N tries.
            EVENTS_CONSUMED.labels(self.stream, self.group, "error").inc()
            with logs.about(event) if event is not None else contextlib.nullcontext():
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
                with tracing.handling(event, self.stream, self.group), logs.about(event):
                    self.handlers[event.type](session, event)
                    log.debug("%s applied by %s", event.type, self.group)
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


async def _message(message: Any) -> Any:
    """FastStream's decoder step: our parser has already decoded the entries (its body), and
    the handler wants the message itself, to acknowledge it."""
    return message
