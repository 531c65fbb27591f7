"""One service process's moving parts: database, directory, Redis, outbox relay and consumers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import inspect
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from shared.config import ServiceSettings
from shared.consumer import (
    AfterCommit,
    Finish,
    Handler,
    Prepare,
    StreamConsumer,
    make_broker,
)
from shared.db import is_sqlite, make_engine, migrate, ping, upkeep_tables, wait_for_database
from shared.directory import DIRECTORY, MIGRATIONS, Directory
from shared.events import STREAM_CONSUMERS, STREAM_PRODUCERS, STREAM_SOURCES
from shared.outbox import OutboxRelay
from shared.pruning import EventRecordPruning, log_pruned
from shared.ratelimit import SharedWindows
from shared.redis import connect_hot_path, connect_with
from shared.retention import trim_stream

log = logging.getLogger(__name__)

Worker = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
# The most connections a service keeps to the credential directory (sign-ins, tokens).
DIRECTORY_POOL_SIZE = 5


class ServiceRuntime:
    """Owns the connections and background tasks of one service process."""

    def __init__(self, settings: ServiceSettings, migrations: Path) -> None:
        self.settings = settings
        self.component = settings.service_name
        self.migrations = migrations
        self.engine = make_engine(settings, self.component, pool_size=settings.db_pool_size)
        self.directory_engine = make_engine(
            settings, DIRECTORY, pool_size=min(DIRECTORY_POOL_SIZE, settings.db_pool_size)
        )
        self.directory = Directory(
            self.directory_engine, settings.token_secret, lookups=settings.db_pool_size
        )
        self.redis = connect_with(settings)
        self.relay = OutboxRelay(
            self.engine,
            self.redis,
            lock_name=settings.schema_for(self.component) + ":" + str(self.engine.url.database),
            batch=settings.outbox_batch,
            poll_seconds=settings.outbox_poll_seconds,
            stream_prefix=settings.stream_prefix,
            replay_hours=settings.outbox_replay_hours,
            lock_ms=settings.relay_lock_ms,
        )
        # The consumers' FastStream broker; it connects when the first consumer starts.
        self.broker = make_broker(settings)
        self.consumers: list[StreamConsumer] = []
        self.workers: list[Worker] = []
        # Run once the migrations are applied, before any consumer or worker starts; one that
        # raises stops the process (the service cannot work with what it found).
        self.after_migrations: list[Callable[[], object]] = []
        self.kept: list[str] = []
        self._stop = asyncio.Event()
        self.booted = False
        self._tasks: list[asyncio.Task[None]] = []
        # Each published event leaves a dead row in the outbox (shared/outbox.py).
        self.upkeep("outbox")
        self._keep_streams_bounded()
        # Published outbox rows and processed-event ids no redelivery can need are deleted;
        # a service adds its own tables to `pruning.extra` (notify's delivery log).
        self.pruning = EventRecordPruning(
            self.engine,
            self.redis,
            consumed=[
                settings.stream(stream)
                for stream, consumers in STREAM_CONSUMERS.items()
                if self.component in consumers
            ],
            replay_hours=settings.outbox_replay_hours,
            processed_hours=settings.processed_events_hours,
            batch=settings.prune_batch,
            extra=[],
        )
        if settings.prune_seconds > 0:
            self.workers.append(
                every(settings.prune_seconds, self.pruning.once, "pruning", then=log_pruned)
            )

    def _keep_streams_bounded(self) -> None:
        """The producer of a stream trims what every consumer group has acknowledged."""
        s = self.settings
        if s.stream_trim_seconds <= 0:
            return
        for stream, producer in STREAM_PRODUCERS.items():
            if producer != self.component:
                continue
            groups = [s.schema_for(consumer) for consumer in STREAM_CONSUMERS[stream]]
            trim = functools.partial(
                trim_stream, self.redis, s.stream(stream), groups, s.stream_retention_seconds
            )
            self.workers.append(every(s.stream_trim_seconds, trim, f"{stream} retention"))

    def consume(
        self,
        stream: str,
        handlers: dict[str, Handler],
        after_commit: AfterCommit | None = None,
        prepare: Prepare | None = None,
        finish: Finish | None = None,
    ) -> StreamConsumer:
        s = self.settings
        consumer = StreamConsumer(
            self.redis,
            self.engine,
            s.stream(stream),
            group=s.schema_for(self.component),
            handlers=handlers,
            producer=STREAM_SOURCES[stream],
            broker=self.broker,
            batch=s.consumer_batch,
            block_ms=s.consumer_block_ms,
            claim_idle_ms=s.claim_idle_ms,
            max_deliveries=s.max_deliveries,
            after_commit=after_commit,
            prepare=prepare,
            finish=finish,
        )
        self.consumers.append(consumer)
        return consumer

    def prepare_database(self) -> None:
        """Wait for the database (with backoff, without limit) and apply migrations."""
        wait_for_database(self.engine, timeout=None)
        migrate(self.directory_engine, MIGRATIONS, self.settings.schema_for(DIRECTORY))
        migrate(self.engine, self.migrations, self.settings.schema_for(self.component))

    async def start(self) -> None:
        """Serve at once; boot (database, migrations, background work) in the background.

        Until booted, /healthz answers, /readyz says why it is not ready and the API answers
        503, so a service started before its database waits instead of crashing.
        """
        self._stop.clear()
        self._tasks = [asyncio.create_task(self._boot(), name="boot")]

    async def _boot(self) -> None:
        await asyncio.to_thread(self.prepare_database)
        try:
            for step in self.after_migrations:
                await asyncio.to_thread(step)
        except Exception:
            # A step after the migrations found the data unusable (notify: a secret sealed
            # with a key it does not have): stop, loudly, rather than serve without it.
            log.critical("%s cannot start", self.component, exc_info=True)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        if self._stop.is_set():
            return
        self._tasks.append(asyncio.create_task(self.relay.run(self._stop), name="outbox-relay"))
        self._tasks += [
            asyncio.create_task(c.run(self._stop), name=f"consumer:{c.stream}")
            for c in self.consumers
        ]
        self._tasks += [asyncio.create_task(w(self._stop)) for w in self.workers]
        self.booted = True
        settle_heap()

    def upkeep(self, *tables: str) -> None:
        """Vacuum and analyze these tables whenever they need it (db.upkeep_tables), on
        PostgreSQL, every `upkeep_seconds`."""
        if not self.kept and self.settings.upkeep_seconds > 0 and not is_sqlite(self.engine):
            self.workers.append(
                every(
                    self.settings.upkeep_seconds,
                    lambda: upkeep_tables(self.engine, self.kept),
                    "table upkeep",
                    then=_log_upkeep,
                )
            )
        self.kept.extend(tables)

    async def stop(self) -> None:
        """Stop reading; let in-flight handlers finish; what is unacknowledged stays pending."""
        self._stop.set()
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=10)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self.broker.stop()
        await self.redis.aclose()
        self.engine.dispose()
        self.directory_engine.dispose()

    async def readiness(self) -> dict[str, bool]:
        database = await asyncio.to_thread(ping, self.engine)
        try:
            redis_ok = bool(await asyncio.wait_for(self.redis.ping(), timeout=2))
        except Exception:
            redis_ok = False
        return {"database": database, "redis": redis_ok, "migrated": self.booted}

    def lifespan(self) -> Callable[[FastAPI], Any]:
        @asynccontextmanager
        async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
            if self.settings.rate_limit_scope == "shared":
                _app.state.rate_limiter = SharedWindows(
                    connect_hot_path(self.settings),
                    self.settings.schema_prefix + self.component,
                    self.settings.rate_limit_per_minute,
                )
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        return _lifespan


def every(
    seconds: float,
    work: Callable[[], Any],
    what: str,
    then: Callable[[Any], None] | None = None,
) -> Worker:
    """A background worker that runs `work` now and then every `seconds` until the service
    stops (in a thread, or awaited when it is a coroutine function), hands each result to
    `then`, and logs a failed round (the next round tries again: the database or Redis may be
    away for a while)."""
    awaited = inspect.iscoroutinefunction(work)

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                result = await work() if awaited else await asyncio.to_thread(work)
            except Exception:
                log.exception("%s failed; retrying next round", what)
            else:
                if then is not None:
                    then(result)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=seconds)

    return run


def _log_upkeep(done: list[str]) -> None:
    if done:
        log.info("table upkeep: %s", ", ".join(done))


def settle_heap() -> None:
    """Move what the process holds after booting out of the collector's sight.

    The modules, models, schemas and migrations loaded by then are some 160,000 objects
    that live as long as the process. Each full collection walked all of them (about
    75 ms here, with the GIL held), which made the slowest requests slow. Frozen, they are
    never walked again; what the process allocates afterwards is collected as usual.
    """
    gc.collect()
    gc.freeze()
