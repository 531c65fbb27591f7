"""The hand-written consumer loop the services ran before FastStream, kept to measure against.

A faithful minimal copy of `shared/consumer.py` at commit 8af5417, the last before 5f9134b
("Consumers on FastStream 0.7.8"; `git show 8af5417:shared/consumer.py`): the loop
`run` (XREADGROUP `>` with BLOCK, an XAUTOCLAIM round every `claim_idle_ms`/2, the group
recreated at 0 after NOGROUP, back-off from 0.2 s to 5 s while Redis is away), `read_once`,
`reclaim_once` and the batch delivery with its own XACK after the commit. What did not
change with FastStream is not copied but inherited from today's `StreamConsumer`: the
transaction (`_apply_all`: the processed-event check and record, the prepare/finish hooks,
the handlers), the one-by-one fallback (`_deliver`) and dead-lettering. So a bench of the
two (`python -m bench --only consumers`, bench/consumer.py) times only what reads and
acknowledges the entries: FastStream's subscribers against this loop.

Not used by any service.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.engine import Engine

from shared.consumer import (
    AfterCommit,
    Finish,
    Handler,
    Prepare,
    consumer_name,
    ensure_group,
)
from shared.consumer import StreamConsumer as FastStreamConsumer
from shared.events import CloudEvent
from shared.metrics import EVENTS_CONSUMED

log = logging.getLogger(__name__)


class LegacyConsumer(FastStreamConsumer):
    """The pre-FastStream loop over today's apply path (same handlers, same transaction)."""

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
        # No broker and no subscribers: the loop below reads and acknowledges itself.
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
        self.producer = producer

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
        if len(entries) == 1:
            await self._deliver(*entries[0])
        elif entries:
            await self._deliver_read(entries)
        return len(entries)

    async def reclaim_once(self) -> int:
        """Claim entries idle past `claim_idle_ms` from any consumer; dead-letter the hopeless."""
        reply = await self.redis.xautoclaim(
            self.stream, self.group, self.name, self.claim_idle_ms, "0-0", count=self.batch
        )
        claimed = reply[1]
        deleted = reply[2] if len(reply) > 2 else []
        if deleted:
            await self.redis.xack(self.stream, self.group, *deleted)
        for entry_id, fields in claimed:
            if not fields:
                await self.redis.xack(self.stream, self.group, entry_id)
                continue
            info = await self.redis.xpending_range(
                self.stream, self.group, min=entry_id, max=entry_id, count=1
            )
            deliveries = int(info[0]["times_delivered"]) if info else 1
            if deliveries > self.max_deliveries:
                await self._dead_letter(entry_id, fields, deliveries)
            else:
                await self._deliver(entry_id, fields, retried=True)
        await self._report_sizes()
        return len(claimed)

    async def _deliver_read(self, entries: list[tuple[Any, dict[Any, Any]]]) -> None:
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


# bench/consumer.py loads a consumer module by its path and takes its `StreamConsumer`.
StreamConsumer = LegacyConsumer
