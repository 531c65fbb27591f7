"""The delivery worker: one loop that sends due deliveries, records each attempt, reschedules.

The schedule lives in the database (`Delivery.next_attempt_at`), so a restart resumes where
the last process stopped. Several replicas may run this loop on one database: a delivery is
claimed by an atomic UPDATE of its lease (after `FOR UPDATE SKIP LOCKED` on PostgreSQL), so
one attempt is made by one worker; a worker that dies mid-attempt leaves a lease that
expires, and another worker tries again with the same `webhook-id`.

Order: a delivery is due only when no earlier delivery of the same application to the same
endpoint is still pending, and no earlier event of that application is still unapplied in
the streams (backlog.py), so a receiver sees an application's events in the order they
happened (by event time), each after the one before it succeeded or was given up.

Connection pinning: the URL is checked again before every attempt (a name may resolve to a
private address today) and the request goes to the checked address itself, with the URL's
host in the Host header and as the TLS server name, so the certificate is still verified
for that host. Keep-alive is off, so a connection opened for one host is never reused for
another that shares its address; redirects are not followed and proxies from the
environment are ignored, since either would send the request somewhere unchecked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import and_, or_, update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from services.notify import store
from services.notify.backlog import UNKNOWN, Backlog, read_backlog
from services.notify.domain import retry, signing, ssrf
from services.notify.settings import NotifySettings
from shared.consumer import consumer_name
from shared.db import is_sqlite, session_scope, utcnow
from shared.metrics import WEBHOOK_DELIVERIES, WEBHOOK_LATENCY

log = logging.getLogger(__name__)

USER_AGENT = "REE-Channel-Webhooks/1.0"
MAX_ERROR_LENGTH = 1000
# How long an in-flight attempt may go on once the service is asked to stop.
SHUTDOWN_GRACE_SECONDS = 8.0
# Past this many unapplied entries in a stream, the backlog is treated as unknown (catching up).
BACKLOG_SCAN_LIMIT = 1000
GONE_REASON = "The receiver answered 410 Gone, so the endpoint was disabled."


@dataclass(frozen=True)
class Job:
    """A claimed delivery with everything needed to send it, read in the claiming transaction."""

    delivery_id: str
    endpoint_id: str
    webhook_id: str
    url: str
    secrets: tuple[str, ...]
    body: bytes
    attempt_number: int
    round_attempt: int
    event_time: datetime


@dataclass(frozen=True)
class Response:
    status_code: int | None
    retry_after: str | None
    error: str | None


class DeliveryWorker:
    """Sends due deliveries, at most `delivery_concurrency` at a time."""

    def __init__(self, engine: Engine, settings: NotifySettings, redis: aioredis.Redis) -> None:
        self.engine = engine
        self.settings = settings
        self.redis = redis
        self.streams: list[tuple[str, str]] = []
        self.event_types: frozenset[str] = frozenset()
        self.url_policy = settings.url_policy()
        self.retry_policy = settings.retry_policy()
        self.owner = f"{consumer_name()}-{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
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
        self._loop = asyncio.get_running_loop()
        inflight: set[asyncio.Task[None]] = set()
        backoff = 0.5
        async with self._client() as client:
            try:
                while not stop.is_set():
                    delay = self.settings.delivery_poll_seconds
                    free = self.settings.delivery_concurrency - len(inflight)
                    self._wake.clear()
                    if free > 0:
                        try:
                            backlog = await self._backlog()
                            jobs = await asyncio.to_thread(self.claim, free, backlog)
                            self.healthy, backoff = True, 0.5
                        except Exception as exc:  # the database is down: try again later
                            self.healthy = False
                            jobs, delay, backoff = [], backoff, min(backoff * 2, 10.0)
                            log.warning("delivery worker: %s; retrying in %.1fs", exc, delay)
                        for job in jobs:
                            task = asyncio.create_task(self._attempt(client, job))
                            inflight.add(task)
                            task.add_done_callback(inflight.discard)
                        if len(jobs) == free and self.healthy:
                            continue
                    await self._idle(stop, inflight, delay)
            finally:
                await self._finish(inflight)

    async def _idle(
        self, stop: asyncio.Event, inflight: set[asyncio.Task[None]], delay: float
    ) -> None:
        # A finished attempt can make the next delivery of its application due, so it wakes
        # the loop as well as new messages (wake) and the poll interval do.
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        await asyncio.wait(
            [*waiters, *inflight], timeout=delay, return_when=asyncio.FIRST_COMPLETED
        )
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

    def _client(self) -> httpx.AsyncClient:
        timeout = self.settings.webhook_timeout_seconds
        return httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={"user-agent": USER_AGENT},
        )

    # --- claiming -----------------------------------------------------------------------------

    async def _backlog(self) -> Backlog:
        try:
            return await read_backlog(
                self.redis, self.streams, self.event_types, BACKLOG_SCAN_LIMIT
            )
        except (RedisError, OSError) as exc:
            # Without Redis the backlog is unknown: only deliveries of no application go out.
            log.warning("delivery worker: cannot read the stream backlog (%s)", exc)
            return UNKNOWN

    def claim(self, limit: int, backlog: Backlog | None = None) -> list[Job]:
        """Take up to `limit` due deliveries for this worker; returns what it must send."""
        backlog = backlog or Backlog()
        now = utcnow()
        jobs: list[Job] = []
        with session_scope(self.engine) as session:
            for delivery in session.exec(self._due(now, limit, backlog)).all():
                if len(jobs) >= limit:
                    break
                if backlog.holds_back(delivery.application_id, delivery.event_time):
                    continue
                taken: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                    update(store.Delivery)
                    .where(
                        col(store.Delivery.id) == delivery.id,
                        col(store.Delivery.status) == store.PENDING,
                        _lease_free(now),
                    )
                    .values(lease_until=now + self.settings.lease, lease_owner=self.owner)
                )
                if taken.rowcount != 1:
                    continue  # another worker was quicker
                job = self._job(session, delivery, now)
                if job is not None:
                    jobs.append(job)
        return jobs

    def _due(self, now: datetime, limit: int, backlog: Backlog) -> SelectOfScalar[store.Delivery]:
        d = store.Delivery
        earlier = aliased(store.Delivery)
        blocked_by_earlier = (
            select(earlier.id)
            .where(
                earlier.endpoint_id == d.endpoint_id,
                earlier.application_id == d.application_id,
                earlier.status == store.PENDING,
                or_(
                    col(earlier.event_time) < col(d.event_time),
                    and_(
                        col(earlier.event_time) == col(d.event_time),
                        col(earlier.message_seq) < col(d.message_seq),
                    ),
                ),
            )
            .exists()
        )
        query = select(d).where(
            d.status == store.PENDING,
            col(d.next_attempt_at) <= now,
            _lease_free(now),
            ~blocked_by_earlier,
        )
        if not backlog.complete:
            query = query.where(col(d.application_id).is_(None))
        # Room for the deliveries the backlog holds back, which are skipped after reading.
        query = query.order_by(col(d.next_attempt_at)).limit(limit + len(backlog.earliest))
        if not is_sqlite(self.engine):
            query = query.with_for_update(skip_locked=True, of=d)
        return query

    def _job(self, session: Session, delivery: store.Delivery, now: datetime) -> Job | None:
        endpoint = session.get(store.WebhookEndpoint, delivery.endpoint_id)
        message = session.get(store.Message, delivery.message_seq)
        if (
            endpoint is None
            or message is None
            or endpoint.deleted_at is not None
            or endpoint.status != store.ACTIVE
        ):
            delivery.status, delivery.next_attempt_at = store.CANCELLED, None
            delivery.lease_until = delivery.lease_owner = None
            delivery.updated_at = now
            session.add(delivery)
            return None
        return Job(
            delivery_id=delivery.id,
            endpoint_id=endpoint.id,
            webhook_id=delivery.webhook_id,
            url=endpoint.url,
            secrets=tuple(endpoint.signing_secrets(now)),
            body=message.body.encode(),
            attempt_number=delivery.attempt_count + 1,
            round_attempt=delivery.round_attempts + 1,
            event_time=delivery.event_time,
        )

    # --- sending ------------------------------------------------------------------------------

    async def _attempt(self, client: httpx.AsyncClient, job: Job) -> None:
        attempted_at = utcnow()
        started = time.perf_counter()
        try:
            response = await self._send(client, job)
        except asyncio.CancelledError:
            # Shutting down mid-request: give the delivery back so another worker sends it now.
            self._release(job)
            raise
        except Exception:
            log.exception("delivery %s: unexpected error while sending", job.delivery_id)
            response = Response(None, None, "Internal error while sending; it will be retried.")
        duration_ms = int((time.perf_counter() - started) * 1000)
        try:
            await asyncio.to_thread(self.record, job, attempted_at, duration_ms, response)
        except Exception:
            # The lease expires and the attempt is made again, with the same webhook-id.
            log.exception("could not record attempt of delivery %s", job.delivery_id)

    async def _send(self, client: httpx.AsyncClient, job: Job) -> Response:
        try:
            target = await asyncio.to_thread(ssrf.check_url, job.url, self.url_policy)
        except ssrf.UnsafeWebhookURL as exc:
            log.warning("delivery %s refused: %s (%s)", job.delivery_id, exc.reason, exc.address)
            return Response(None, None, "Refused by the URL policy: " + exc.reason)
        timestamp = int(time.time())
        headers = signing.headers(job.webhook_id, timestamp, job.body, job.secrets)
        headers["host"] = _host_header(target)
        error = "no address to connect to"
        for address in target.addresses:
            try:
                async with asyncio.timeout(self.settings.webhook_timeout_seconds):
                    async with client.stream(
                        "POST",
                        _pinned_url(target, address),
                        content=job.body,
                        headers=headers,
                        extensions={"sni_hostname": target.host},
                    ) as answer:
                        return Response(answer.status_code, answer.headers.get("retry-after"), None)
            except (TimeoutError, httpx.TimeoutException):
                return Response(
                    None, None, f"Timed out after {self.settings.webhook_timeout_seconds:g} s"
                )
            except httpx.ConnectError as exc:
                # Another checked address of the same host may answer.
                error = f"Could not connect: {exc}" if str(exc) else "Could not connect"
            except httpx.HTTPError as exc:
                return Response(None, None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH])
        return Response(None, None, error[:MAX_ERROR_LENGTH])

    # --- recording ----------------------------------------------------------------------------

    def record(
        self, job: Job, attempted_at: datetime, duration_ms: int, response: Response
    ) -> None:
        """Log the attempt and decide what follows: done, retry at a time, or give up."""
        now = utcnow()
        outcome = retry.classify(response.status_code, response.error)
        with session_scope(self.engine) as session:
            delivery = session.get(store.Delivery, job.delivery_id)
            endpoint = session.get(store.WebhookEndpoint, job.endpoint_id)
            assert delivery is not None and endpoint is not None
            next_retry_at: datetime | None = None
            if outcome is retry.Outcome.SUCCEEDED:
                label = "succeeded"
                if delivery.succeeded_at is None:
                    delivery.succeeded_at = now
                    WEBHOOK_LATENCY.observe(max(0.0, (now - job.event_time).total_seconds()))
                delivery.status = store.SUCCEEDED
                endpoint.failing_since = None
            elif outcome is retry.Outcome.DISABLE_ENDPOINT:
                label = "endpoint_disabled"
                delivery.status = store.FAILED
                if endpoint.status == store.ACTIVE:
                    store.disable_endpoint(session, endpoint, GONE_REASON, now)
            else:
                endpoint.failing_since = endpoint.failing_since or attempted_at
                next_retry_at = retry.next_attempt_at(
                    job.round_attempt, now, response.retry_after, policy=self.retry_policy
                )
                failing_too_long = retry.should_disable(
                    endpoint.failing_since, now, policy=self.retry_policy
                )
                if failing_too_long and endpoint.status == store.ACTIVE:
                    label, next_retry_at = "endpoint_disabled", None
                    delivery.status = store.FAILED
                    store.disable_endpoint(session, endpoint, _failing_reason(endpoint), now)
                elif next_retry_at is None:
                    label = "failed"
                    delivery.status = store.FAILED
                else:
                    label = "retrying"
            session.add(
                store.Attempt(
                    delivery_id=delivery.id,
                    number=job.attempt_number,
                    attempted_at=attempted_at,
                    status_code=response.status_code,
                    duration_ms=duration_ms,
                    error=response.error,
                    outcome=label,
                    next_retry_at=next_retry_at,
                )
            )
            delivery.attempt_count = job.attempt_number
            delivery.round_attempts = job.round_attempt
            delivery.next_attempt_at = next_retry_at
            delivery.last_status_code = response.status_code
            delivery.last_error = response.error
            delivery.lease_until = delivery.lease_owner = None
            delivery.updated_at = now
            endpoint.updated_at = now
            session.add(delivery)
            session.add(endpoint)
        WEBHOOK_DELIVERIES.labels(label).inc()

    def _release(self, job: Job) -> None:
        with contextlib.suppress(Exception), session_scope(self.engine) as session:
            session.execute(
                update(store.Delivery)
                .where(
                    col(store.Delivery.id) == job.delivery_id,
                    col(store.Delivery.lease_owner) == self.owner,
                )
                .values(lease_until=None, lease_owner=None)
            )


def _lease_free(now: datetime) -> ColumnElement[bool]:
    lease = col(store.Delivery.lease_until)
    return or_(lease.is_(None), lease < now)


def _failing_reason(endpoint: store.WebhookEndpoint) -> str:
    since = endpoint.failing_since.isoformat() if endpoint.failing_since else "a long time"
    return f"Every delivery has failed since {since}, so the endpoint was disabled."


def _host_header(target: ssrf.ResolvedTarget) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    if target.port != ssrf.DEFAULT_PORTS[target.scheme]:
        host = f"{host}:{target.port}"
    return host


def _pinned_url(target: ssrf.ResolvedTarget, address: str) -> str:
    """The URL with its host replaced by one checked address, so no second DNS lookup happens."""
    parts = urlsplit(target.url)
    host = f"[{address}]" if ":" in address else address
    return urlunsplit((target.scheme, f"{host}:{target.port}", parts.path or "/", parts.query, ""))
