"""The delivery worker: one loop per process, whose phases are claim → send → record →
schedule the next attempt and judge the endpoint's health.

- **Claim** (`store/claims.py`): due deliveries many at a time, under a lease, so several
  replicas share one database and one attempt is made by one worker. While attempts are in
  flight the loop claims again once a quarter of its slots are free (or 50 ms have
  passed), not after every attempt.
- **Send** (`transport.py`): the URL checked again (DNS rebinding), the request to the
  checked address, over kept-alive connections of the receiver's own host; or, for a
  person's e-mail endpoint, the e-mail written and handed to the SMTP server (`email.py`).
- **Record** (`store/records.py`): the attempts that ended meanwhile, together, in one
  transaction of a fixed number of statements (one by one if that fails), by `Recorder`.
- **Schedule next / endpoint health**: each attempt's outcome (`domain/retry.py`) decides
  the delivery's next attempt or its end, and changes its endpoint's health
  (`domain/health.py`: 410, or failing for 5 days, disables it).

The schedule lives in the database (`Delivery.next_attempt_at`), so a restart resumes where
the last process stopped; a worker that dies mid-attempt leaves a lease that expires, and
another worker tries again with the same `webhook-id`.

Order: a delivery is due only when no earlier delivery of the same application to the same
endpoint is still pending, and no earlier event of that application is still unapplied in
the streams (backlog.py), so a receiver sees an application's events in the order they
happened (by event time), each after the one before it succeeded or was given up. When a
delivery finishes with such a successor waiting, the recorder wakes the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import redis.asyncio as aioredis
from opentelemetry.trace import SpanKind
from redis.exceptions import RedisError
from sqlalchemy.engine import Engine

from services.notify import store
from services.notify.backlog import UNKNOWN, Backlog, BacklogReader
from services.notify.domain import retry
from services.notify.domain.health import EndpointHealth
from services.notify.email import Mailer, is_email
from services.notify.settings import NotifySettings
from services.notify.store import claims, records
from services.notify.store.claims import Job
from services.notify.transport import Clients, Response, Transport
from shared import tracing
from shared.consumer import consumer_name
from shared.db import session_scope, utcnow
from shared.mail import MailSettings
from shared.metrics import WEBHOOK_DELIVERIES, WEBHOOK_LATENCY

log = logging.getLogger(__name__)

# How long an in-flight attempt may go on once the service is asked to stop.
SHUTDOWN_GRACE_SECONDS = 8.0
# Entries read from a stream per pass; past them the backlog is unknown until the next pass.
BACKLOG_SCAN_LIMIT = 1000
# While attempts are in flight, claim again only when this share of the slots is free (or
# CLAIM_INTERVAL_SECONDS has passed): one claim for many deliveries, not one per attempt.
CLAIM_SHARE = 4
CLAIM_INTERVAL_SECONDS = 0.05
# At most this many attempts are recorded in one transaction.
RECORD_BATCH = 200


class DeliveryWorker:
    """Sends due deliveries, at most `delivery_concurrency` at a time."""

    def __init__(
        self,
        engine: Engine,
        settings: NotifySettings,
        redis: aioredis.Redis,
        mailer: Mailer | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.redis = redis
        self.mailer = mailer or Mailer(MailSettings())
        self.streams: list[tuple[str, str]] = []
        self.event_types: frozenset[str] = frozenset()
        self.retry_policy = settings.retry_policy()
        self.transport = Transport(settings.url_policy(), settings.webhook_timeout_seconds)
        self.owner = f"{consumer_name()}-{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._backlog_reader: BacklogReader | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.healthy = False

    def follow(self, stream: str, group: str, event_types: Iterable[str]) -> None:
        """Hold deliveries back while earlier events of their application wait in this stream."""
        self.streams.append((stream, group))
        self.event_types |= frozenset(event_types)

    def wake(self) -> None:
        """Look for due deliveries now; callable from any thread (routes run in threads)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = loop = asyncio.get_running_loop()
        inflight: set[asyncio.Task[None]] = set()
        backoff = 0.5
        last_claim = -1.0
        threshold = max(1, self.settings.delivery_concurrency // CLAIM_SHARE)
        clients = Clients(self.transport.new_pool)
        self._recorder = Recorder(self, self._wake.set)
        recording = asyncio.create_task(self._recorder.run())
        try:
            while not stop.is_set():
                delay = self.settings.delivery_poll_seconds
                free = self.settings.delivery_concurrency - len(inflight)
                recent = loop.time() - last_claim < CLAIM_INTERVAL_SECONDS
                if free > 0 and (free >= threshold or not inflight or not recent):
                    self._wake.clear()
                    last_claim = loop.time()
                    try:
                        # Claim: due deliveries, many at a time, under a lease.
                        backlog = await self._backlog()
                        jobs = await asyncio.to_thread(self.claim, free, backlog)
                        self.healthy, backoff = True, 0.5
                    except Exception as exc:  # the database is down: try again later
                        self.healthy = False
                        jobs, delay, backoff = [], backoff, min(backoff * 2, 10.0)
                        log.warning("delivery worker: %s; retrying in %.1fs", exc, delay)
                    # Send: each attempt on its own; it hands its outcome to the recorder.
                    for job in jobs:
                        task = asyncio.create_task(self._attempt(clients, job))
                        inflight.add(task)
                        task.add_done_callback(inflight.discard)
                    if len(jobs) == free and self.healthy:
                        continue
                    await self._idle(stop, delay)
                else:
                    # Too few free slots, just after a claim: let more attempts end first. A
                    # wake meanwhile is kept for the next claim (waiting on it would spin).
                    await self._idle(stop, CLAIM_INTERVAL_SECONDS, woken=False)
        finally:
            await self._finish(inflight)
            await self._recorder.close()
            await recording
            await clients.aclose()

    async def _idle(self, stop: asyncio.Event, delay: float, woken: bool = True) -> None:
        # New messages wake the loop, and so does the recorder when a finished attempt may
        # have made the next delivery of its application due; else the poll interval does.
        waiters = [asyncio.ensure_future(stop.wait())]
        if woken:
            waiters.append(asyncio.ensure_future(self._wake.wait()))
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()

    async def _finish(self, inflight: set[asyncio.Task[None]]) -> None:
        """Let in-flight attempts end; cancel the slow ones, which release their claims."""
        if not inflight:
            return
        _done, pending = await asyncio.wait(set(inflight), timeout=SHUTDOWN_GRACE_SECONDS)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- claim ---------------------------------------------------------------------------------

    async def _backlog(self) -> Backlog:
        try:
            if self._backlog_reader is None:
                self._backlog_reader = BacklogReader(self.streams, self.event_types)
            return await self._backlog_reader.read(self.redis, BACKLOG_SCAN_LIMIT)
        except (RedisError, OSError) as exc:
            # Without Redis the backlog is unknown: only deliveries of no application go out.
            log.warning("delivery worker: cannot read the stream backlog (%s)", exc)
            return UNKNOWN

    def claim(self, limit: int, backlog: Backlog | None = None) -> list[Job]:
        """Take up to `limit` due deliveries for this worker; returns what it must send."""
        return claims.claim_due(
            self.engine, limit, backlog or Backlog(), owner=self.owner, lease=self.settings.lease
        )

    # --- send ----------------------------------------------------------------------------------

    async def _attempt(self, clients: Clients, job: Job) -> None:
        attempted_at = utcnow()
        started = time.perf_counter()
        try:
            with tracing.span(
                "email send" if is_email(job) else "webhook send",
                parent=job.traceparent,
                kind=SpanKind.CLIENT,
                attributes={
                    "webhook.id": job.webhook_id,
                    "webhook.endpoint_id": job.endpoint_id,
                    "webhook.attempt": job.attempt_number,
                },
            ) as span:
                if is_email(job):
                    response = await self.mailer.send(job)
                else:
                    response = await self.transport.send(clients, job)
                tracing.answered(span, response.status_code, response.error)
        except asyncio.CancelledError:
            # Shutting down mid-request: give the delivery back so another worker sends it now.
            with contextlib.suppress(Exception):
                claims.release(self.engine, job.delivery_id, self.owner)
            raise
        except Exception:
            log.exception("delivery %s: unexpected error while sending", job.delivery_id)
            response = Response(None, None, "Internal error while sending; it will be retried.")
        duration_ms = int((time.perf_counter() - started) * 1000)
        self._recorder.add(Outcome(job, attempted_at, duration_ms, response))

    # --- record, schedule next, endpoint health -------------------------------------------------

    def record(self, outcomes: list[Outcome]) -> bool:
        """Log the attempts and decide what follows each: done, retry at a time, or give up.

        One transaction for all of them, in a fixed number of statements (a burst records
        hundreds at once); the caller records them one by one if it fails. True when a
        delivery that waited for one of these to finish (the next event of its application
        to the same endpoint) may now be due, so the worker should claim again now.
        """
        now = utcnow()
        with session_scope(self.engine) as session:
            succeeded_before = records.lock_deliveries(
                session, (done.job.delivery_id for done in outcomes)
            )
            health = records.endpoint_health(session, {done.job.endpoint_id for done in outcomes})
            results: list[records.AttemptResult] = []
            finished: set[tuple[str, str]] = set()
            for done in outcomes:
                job = done.job
                first_success = not succeeded_before.get(job.delivery_id, False)
                label, status, next_retry_at = self._decide(
                    done, health[job.endpoint_id], first_success, now
                )
                if status == store.SUCCEEDED:
                    succeeded_before[job.delivery_id] = True
                if status != store.PENDING and job.application_id is not None:
                    finished.add((job.endpoint_id, job.application_id))
                results.append(
                    records.AttemptResult(
                        delivery_id=job.delivery_id,
                        number=job.attempt_number,
                        round_attempt=job.round_attempt,
                        attempted_at=done.attempted_at,
                        duration_ms=done.duration_ms,
                        status_code=done.response.status_code,
                        error=done.response.error,
                        outcome=label,
                        status=status,
                        next_attempt_at=next_retry_at,
                    )
                )
            records.write_health(session, health, now)
            records.write_results(session, results, now)
            successor = records.has_successor(session, finished)
        for result in results:
            WEBHOOK_DELIVERIES.labels(result.outcome).inc()
        return successor

    def _decide(
        self, done: Outcome, endpoint: EndpointHealth, first_success: bool, now: datetime
    ) -> tuple[str, str, datetime | None]:
        """(metric label, the delivery's status, its next attempt) after one attempt; the
        endpoint's health changes in place (it may have several attempts in the batch)."""
        job, response = done.job, done.response
        outcome = retry.classify(response.status_code, response.error)
        if outcome is retry.Outcome.SUCCEEDED:
            if first_success:
                WEBHOOK_LATENCY.observe(max(0.0, (now - job.event_time).total_seconds()))
            endpoint.succeeded()
            return "succeeded", store.SUCCEEDED, None
        if outcome is retry.Outcome.DISABLE_ENDPOINT:
            endpoint.gone()
            return "endpoint_disabled", store.FAILED, None
        next_retry_at = retry.next_attempt_at(
            job.round_attempt, now, response.retry_after, policy=self.retry_policy
        )
        if endpoint.failed(done.attempted_at, now, self.retry_policy):
            return "endpoint_disabled", store.FAILED, None
        if next_retry_at is None:
            return "failed", store.FAILED, None
        return "retrying", store.PENDING, next_retry_at


@dataclass(frozen=True)
class Outcome:
    """A finished attempt waiting to be recorded."""

    job: Job
    attempted_at: datetime
    duration_ms: int
    response: Response


class Recorder:
    """Records finished attempts in batches, off the event loop; wakes the worker when the
    next delivery of an application may have become due."""

    def __init__(self, worker: DeliveryWorker, recorded: Callable[[], None]) -> None:
        self.worker = worker
        self.recorded = recorded
        self.queue: asyncio.Queue[Outcome | None] = asyncio.Queue()

    def add(self, outcome: Outcome) -> None:
        self.queue.put_nowait(outcome)

    async def close(self) -> None:
        """Record what is queued, then stop."""
        self.queue.put_nowait(None)

    async def run(self) -> None:
        closing = False
        while not closing:
            first = await self.queue.get()
            batch = [] if first is None else [first]
            closing = first is None
            while len(batch) < RECORD_BATCH and not self.queue.empty():
                item = self.queue.get_nowait()
                if item is None:
                    closing = True
                else:
                    batch.append(item)
            if batch and await self._record(batch):
                self.recorded()

    async def _record(self, batch: list[Outcome]) -> bool:
        """Record the batch (one by one if it fails); True if a successor may be due."""
        try:
            return await asyncio.to_thread(self.worker.record, batch)
        except Exception:
            if len(batch) == 1:
                # The lease expires and the attempt is made again, with the same webhook-id.
                log.exception("could not record attempt of delivery %s", batch[0].job.delivery_id)
                return False
            log.warning("recording %d attempts together failed; one by one", len(batch))
        successor = False
        for outcome in batch:
            successor = await self._record([outcome]) or successor
        return successor
