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
for that host. Each receiver host has its own kept-alive connections (`Clients`), so a
connection opened (and its certificate verified) for one host is never reused for another
that shares its address; redirects are not followed and no proxy is used, since either
would send the request somewhere unchecked.

Batching, for throughput under bursts: due deliveries are claimed many at a time (one
SELECT … FOR UPDATE SKIP LOCKED joined with their endpoints and messages, one UPDATE …
RETURNING of the leases), the loop claims again once a quarter of its slots are free rather
than after every single attempt, and finished attempts are recorded together (`Recorder`:
one transaction for all the attempts that ended meanwhile; one by one if that fails).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import (
    and_,
    any_,
    bindparam,
    false,
    func,
    insert,
    or_,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.sql.elements import BindParameter, ColumnElement, Grouping
from sqlmodel import Session, col

from services.notify import store
from services.notify.backlog import UNKNOWN, Backlog, BacklogReader
from services.notify.domain import retry, signing, ssrf
from services.notify.settings import NotifySettings
from shared.consumer import consumer_name
from shared.db import IN_INDEX_ORDER, session_scope, utcnow
from shared.metrics import WEBHOOK_DELIVERIES, WEBHOOK_LATENCY

log = logging.getLogger(__name__)

USER_AGENT = "REE-Channel-Webhooks/1.0"
MAX_ERROR_LENGTH = 1000
# How long an in-flight attempt may go on once the service is asked to stop.
SHUTDOWN_GRACE_SECONDS = 8.0
# Entries read from a stream per pass; past them the backlog is unknown until the next pass.
BACKLOG_SCAN_LIMIT = 1000
GONE_REASON = "The receiver answered 410 Gone, so the endpoint was disabled."
# While attempts are in flight, claim again only when this share of the slots is free (or
# CLAIM_INTERVAL_SECONDS has passed): one claim for many deliveries, not one per attempt.
CLAIM_SHARE = 4
CLAIM_INTERVAL_SECONDS = 0.05
# At most this many attempts are recorded in one transaction.
RECORD_BATCH = 200
# HTTP clients kept for this many receiver hosts at most (least recently used go first).
MAX_CLIENTS = 256
KEEPALIVE_SECONDS = 5.0
# A receiver's answer body is read up to this size (and ignored) to keep the connection.
MAX_DRAINED_BYTES = 64 * 1024


Pool = httpcore.AsyncConnectionPool
# What can go wrong on the wire besides a timeout or a refused connection.
HTTP_ERRORS = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ConnectionNotAvailable,
)


@dataclass(frozen=True)
class Job:
    """A claimed delivery with everything needed to send it, read in the claiming transaction."""

    delivery_id: str
    endpoint_id: str
    application_id: str | None
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
        self._backlog_reader: BacklogReader | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # One TLS context for every connection pool, as httpx builds it (certifi's CA bundle,
        # hostname checked, the environment ignored): not the CA bundle loaded per pool.
        self._tls = httpx.create_ssl_context(trust_env=False)
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
        clients = Clients(self._pool)
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
                        backlog = await self._backlog()
                        jobs = await asyncio.to_thread(self.claim, free, backlog)
                        self.healthy, backoff = True, 0.5
                    except Exception as exc:  # the database is down: try again later
                        self.healthy = False
                        jobs, delay, backoff = [], backoff, min(backoff * 2, 10.0)
                        log.warning("delivery worker: %s; retrying in %.1fs", exc, delay)
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

    def _pool(self) -> httpcore.AsyncConnectionPool:
        """A pool of one connection (see `Clients`), verifying TLS with the shared context."""
        return httpcore.AsyncConnectionPool(
            ssl_context=self._tls,
            max_connections=1,
            max_keepalive_connections=1,
            keepalive_expiry=KEEPALIVE_SECONDS,
        )

    # --- claiming -----------------------------------------------------------------------------

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
        backlog = backlog or Backlog()
        now = utcnow()
        dialect = self.engine.dialect
        with session_scope(self.engine) as session:
            chosen: list[Any] = []
            cancelled: list[str] = []
            due = _due_query(backlog.complete, dialect.name)
            if dialect.name != "sqlite":
                # The claim walks the due index in order and stops at its limit, whatever the
                # planner's statistics say. They lag behind a burst (10,000 more pending rows
                # a few seconds later), and with too few rows expected the planner joined
                # every pending delivery with its endpoint and message and sorted them all
                # (60-100 ms and a sort spilled to disk, to send 32).
                session.execute(IN_INDEX_ORDER)
            wanted = {"due_now": now, "due_limit": limit, **_backlog_params(backlog, dialect)}
            for row in session.execute(due, wanted):
                if row.deleted_at is not None or row.endpoint_status != store.ACTIVE:
                    cancelled.append(row.id)
                else:
                    chosen.append(row)
            if cancelled:
                session.execute(_CANCEL, {"ids": cancelled, "now": now})
            if not chosen:
                return []
            # The conditions again: on SQLite (no row locks) another worker may have been quicker.
            wanted = {
                "ids": [row.id for row in chosen],
                "now": now,
                "lease_until": now + self.settings.lease,
                "owner": self.owner,
            }
            taken = set(session.execute(_TAKE, wanted).scalars())
            return [_job(row, now) for row in chosen if row.id in taken]

    # --- sending ------------------------------------------------------------------------------

    async def _attempt(self, clients: Clients, job: Job) -> None:
        attempted_at = utcnow()
        started = time.perf_counter()
        try:
            response = await self._send(clients, job)
        except asyncio.CancelledError:
            # Shutting down mid-request: give the delivery back so another worker sends it now.
            self._release(job)
            raise
        except Exception:
            log.exception("delivery %s: unexpected error while sending", job.delivery_id)
            response = Response(None, None, "Internal error while sending; it will be retried.")
        duration_ms = int((time.perf_counter() - started) * 1000)
        self._recorder.add(Outcome(job, attempted_at, duration_ms, response))

    async def _send(self, clients: Clients, job: Job) -> Response:
        try:
            target = await asyncio.to_thread(ssrf.check_url, job.url, self.url_policy)
        except ssrf.UnsafeWebhookURL as exc:
            log.warning("delivery %s refused: %s (%s)", job.delivery_id, exc.reason, exc.address)
            return Response(None, None, "Refused by the URL policy: " + exc.reason)
        timestamp = int(time.time())
        signed = signing.headers(job.webhook_id, timestamp, job.body, job.secrets)
        headers = [
            (b"host", _host_header(target).encode()),
            (b"user-agent", USER_AGENT.encode()),
            *((name.encode(), value.encode()) for name, value in signed.items()),
        ]
        seconds = self.settings.webhook_timeout_seconds
        extensions = {
            "sni_hostname": target.host,
            "timeout": {"connect": seconds, "read": seconds, "write": seconds, "pool": seconds},
        }
        origin = f"{target.scheme}://{_host_header(target)}"
        error = "no address to connect to"
        for address in target.addresses:
            try:
                async with (
                    asyncio.timeout(seconds),
                    clients.borrow(origin) as pool,
                    pool.stream(
                        "POST",
                        _pinned_url(target, address),
                        headers=headers,
                        content=job.body,
                        extensions=extensions,
                    ) as answer,
                ):
                    await _drain(answer)
                    return Response(answer.status, _retry_after(answer.headers), None)
            except (TimeoutError, httpcore.TimeoutException):
                return Response(None, None, f"Timed out after {seconds:g} s")
            except httpcore.ConnectError as exc:
                # Another checked address of the same host may answer.
                error = f"Could not connect: {exc}" if str(exc) else "Could not connect"
            except HTTP_ERRORS as exc:
                return Response(None, None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH])
        return Response(None, None, error[:MAX_ERROR_LENGTH])

    # --- recording ----------------------------------------------------------------------------

    def record(self, outcomes: list[Outcome]) -> bool:
        """Log the attempts and decide what follows each: done, retry at a time, or give up.

        One transaction for all of them, in a fixed number of statements (a burst records
        hundreds at once); the caller records them one by one if it fails. True when a
        delivery that waited for one of these to finish (the next event of its application
        to the same endpoint) may now be due, so the worker should claim again now.
        """
        now = utcnow()
        labels: list[str] = []
        with session_scope(self.engine) as session:
            # The deliveries are locked first, in id order, as every transaction that locks
            # several does (recover, cancelling an endpoint's): no deadlock cycle with them.
            ids = sorted(done.job.delivery_id for done in outcomes)
            succeeded_before = {
                i: at is not None for i, at in session.execute(_LOCK_RECORDED, {"ids": ids})
            }
            endpoint_ids = sorted({done.job.endpoint_id for done in outcomes})
            health = {
                i: Health(status, failing_since)
                for i, status, failing_since in session.execute(_HEALTH, {"ids": endpoint_ids})
            }
            deliveries: list[dict[str, Any]] = []
            attempts: list[dict[str, Any]] = []
            finished: set[tuple[str, str]] = set()
            for done in outcomes:
                job = done.job
                first_success = not succeeded_before.get(job.delivery_id, False)
                label, status, next_retry_at = self._decide(
                    done, health[job.endpoint_id], first_success, now
                )
                labels.append(label)
                if status == store.SUCCEEDED:
                    succeeded_before[job.delivery_id] = True
                if status != store.PENDING and job.application_id is not None:
                    finished.add((job.endpoint_id, job.application_id))
                deliveries.append(
                    {
                        "b_id": job.delivery_id,
                        "b_status": status,
                        "b_succeeded_at": now if status == store.SUCCEEDED else None,
                        "b_attempt_count": job.attempt_number,
                        "b_round_attempts": job.round_attempt,
                        "b_next_attempt_at": next_retry_at,
                        "b_last_status_code": done.response.status_code,
                        "b_last_error": done.response.error,
                        "b_now": now,
                    }
                )
                attempts.append(
                    {
                        "delivery_id": job.delivery_id,
                        "number": job.attempt_number,
                        "attempted_at": done.attempted_at,
                        "status_code": done.response.status_code,
                        "duration_ms": done.duration_ms,
                        "error": done.response.error,
                        "outcome": label,
                        "next_retry_at": next_retry_at,
                    }
                )
            self._write_health(session, health, now)
            session.execute(_RECORD_DELIVERY, deliveries)
            session.execute(insert(_ATTEMPTS), attempts)
            successor = bool(finished) and (
                session.execute(_SUCCESSOR, {"pairs": sorted(finished)}).first() is not None
            )
        for label in labels:
            WEBHOOK_DELIVERIES.labels(label).inc()
        return successor

    def _decide(
        self, done: Outcome, endpoint: Health, first_success: bool, now: datetime
    ) -> tuple[str, str, datetime | None]:
        """(metric label, the delivery's status, its next attempt) after one attempt; the
        endpoint's health changes in place (it may have several attempts in the batch)."""
        job, response = done.job, done.response
        outcome = retry.classify(response.status_code, response.error)
        if outcome is retry.Outcome.SUCCEEDED:
            if first_success:
                WEBHOOK_LATENCY.observe(max(0.0, (now - job.event_time).total_seconds()))
            endpoint.failing_since = None
            return "succeeded", store.SUCCEEDED, None
        if outcome is retry.Outcome.DISABLE_ENDPOINT:
            if endpoint.status == store.ACTIVE:
                endpoint.disable(GONE_REASON)
            return "endpoint_disabled", store.FAILED, None
        endpoint.failing_since = endpoint.failing_since or done.attempted_at
        next_retry_at = retry.next_attempt_at(
            job.round_attempt, now, response.retry_after, policy=self.retry_policy
        )
        if endpoint.status == store.ACTIVE and retry.should_disable(
            endpoint.failing_since, now, policy=self.retry_policy
        ):
            endpoint.disable(_failing_reason(endpoint.failing_since))
            return "endpoint_disabled", store.FAILED, None
        if next_retry_at is None:
            return "failed", store.FAILED, None
        return "retrying", store.PENDING, next_retry_at

    @staticmethod
    def _write_health(session: Session, health: dict[str, Health], now: datetime) -> None:
        """Write the endpoints whose health changed (not every endpoint on every success);
        one that must be disabled goes through `store.disable_endpoint`, which also stops
        what still waits to go to it."""
        changed = []
        for endpoint_id, h in sorted(health.items()):
            if h.disable_reason is not None:
                endpoint = session.get(store.WebhookEndpoint, endpoint_id)
                assert endpoint is not None
                endpoint.failing_since = h.failing_since
                store.disable_endpoint(session, endpoint, h.disable_reason, now)
            elif h.failing_since != h.loaded_failing_since:
                changed.append({"b_id": endpoint_id, "b_failing_since": h.failing_since})
        if changed:
            session.execute(
                update(_ENDPOINTS)
                .where(_ENDPOINTS.c.id == bindparam("b_id"))
                .values(failing_since=bindparam("b_failing_since"), updated_at=now),
                changed,
            )

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


@functools.cache
def _due_query(backlog_complete: bool, dialect: str) -> Any:
    """The claim's query, built once per shape and dialect (`due_now`, `due_limit` and the
    backlog's pairs, see `_backlog_params`, are bound)."""
    d, e, m = _DELIVERIES, _ENDPOINTS, _MESSAGES
    now = bindparam("due_now", type_=d.c.next_attempt_at.type)
    earlier = d.alias("earlier")
    blocked_by_earlier = (
        sa_select(earlier.c.id)
        .where(
            earlier.c.endpoint_id == d.c.endpoint_id,
            earlier.c.application_id == d.c.application_id,
            earlier.c.status == store.PENDING,
            or_(
                earlier.c.event_time < d.c.event_time,
                and_(
                    earlier.c.event_time == d.c.event_time,
                    earlier.c.message_seq < d.c.message_seq,
                ),
            ),
        )
        .exists()
    )
    # Plain columns, not three ORM objects per row: a claim reads hundreds in a burst.
    query: Any = (
        sa_select(
            d.c.id,
            d.c.application_id,
            d.c.event_time,
            d.c.webhook_id,
            d.c.attempt_count,
            d.c.round_attempts,
            e.c.id.label("endpoint_id"),
            e.c.url,
            e.c.status.label("endpoint_status"),
            e.c.deleted_at,
            e.c.secret,
            e.c.previous_secret,
            e.c.previous_secret_expires_at,
            m.c.body,
        )
        .join(e, e.c.id == d.c.endpoint_id)
        .join(m, m.c.seq == d.c.message_seq)
        .where(
            d.c.status == store.PENDING,
            d.c.next_attempt_at <= now,
            _lease_free(now),
            ~blocked_by_earlier,
        )
    )
    if backlog_complete:
        # Held back in the query, not after reading: the limit is then the free slots, and
        # no row is read (nor locked) only to be skipped. During a catch-up the backlog holds
        # up to a thousand applications, and a claim that read its limit plus one row per
        # held-back application read (and locked) a thousand rows to send thirty.
        query = query.where(~_held_back_by_backlog(dialect))
    else:
        query = query.where(d.c.application_id.is_(None))
    query = query.order_by(d.c.next_attempt_at).limit(bindparam("due_limit"))
    if dialect != "sqlite":
        query = query.with_for_update(skip_locked=True, of=d)
    return query


def _held_back_by_backlog(dialect: str) -> Any:
    """Whether a delivery's event is later than the earliest event of its application still
    in the streams (the backlog's pairs, bound by `_backlog_params`).

    PostgreSQL gets the pairs as two arrays, applications and their times, and looks the
    application up in them: with some 800 pairs a claim took 0.1-1.7 ms, where joining them as
    an unnested table took 10-38 ms. SQLite gets them as one JSON array of pairs.
    """
    d = _DELIVERIES
    if dialect == "sqlite":
        pairs = func.json_each(bindparam("held")).table_valued("value", name="held")
        app, first = (func.json_extract(pairs.c.value, f"$[{i}]") for i in (0, 1))
        return sa_select(app).where(app == d.c.application_id, first < d.c.event_time).exists()
    apps = bindparam("held_apps", type_=ARRAY(d.c.application_id.type))
    times_type = ARRAY(d.c.event_time.type)
    times = type_coerce(Grouping(bindparam("held_times", type_=times_type)), times_type)
    earliest = times[func.array_position(apps, d.c.application_id)]
    later = and_(d.c.application_id == any_(apps), earliest < d.c.event_time)
    # No application (NULL) is never held back: coalesce, or NOT NULL would drop the row.
    return func.coalesce(later, false())


def _backlog_params(backlog: Backlog, dialect: Dialect) -> dict[str, Any]:
    """The backlog's pairs as the claim binds them for `_held_back_by_backlog`."""
    if not backlog.complete:
        return {}
    if dialect.name == "sqlite":
        # Times as the column stores them, so SQLite compares like with like.
        stored = _DELIVERIES.c.event_time.type.dialect_impl(dialect).bind_processor(dialect)
        pairs = [[app, stored(time)] for app, time in backlog.earliest.items()]
        return {"held": json.dumps(pairs)}
    return {"held_apps": list(backlog.earliest), "held_times": list(backlog.earliest.values())}


def _job(row: Any, now: datetime) -> Job:
    """A claimed row of `_due` as the attempt needs it."""
    return Job(
        delivery_id=row.id,
        endpoint_id=row.endpoint_id,
        application_id=row.application_id,
        webhook_id=row.webhook_id,
        url=row.url,
        secrets=tuple(
            store.signing_secrets(
                row.secret, row.previous_secret, row.previous_secret_expires_at, now
            )
        ),
        body=row.body.encode(),
        attempt_number=row.attempt_count + 1,
        round_attempt=row.round_attempts + 1,
        event_time=row.event_time,
    )


class Health:
    """An endpoint's status and failing streak while a batch of attempts is recorded."""

    def __init__(self, status: str, failing_since: datetime | None) -> None:
        self.status = status
        self.failing_since = self.loaded_failing_since = failing_since
        self.disable_reason: str | None = None

    def disable(self, reason: str) -> None:
        self.status, self.disable_reason = store.DISABLED, reason


_DELIVERIES: Any = store.Delivery.__table__  # type: ignore[attr-defined]
_ENDPOINTS: Any = store.WebhookEndpoint.__table__  # type: ignore[attr-defined]
_ATTEMPTS: Any = store.Attempt.__table__  # type: ignore[attr-defined]
_MESSAGES: Any = store.Message.__table__  # type: ignore[attr-defined]


def _lease_free(now: datetime | BindParameter[Any]) -> ColumnElement[bool]:
    lease = _DELIVERIES.c.lease_until
    return or_(lease.is_(None), lease < now)


# The hot statements, built once, on the tables (not the ORM classes, whose statements take
# the ORM's slower execution path); lists of ids are bound as expanding parameters.
_IDS: Any = bindparam("ids", expanding=True)
_NOW = bindparam("now", type_=_DELIVERIES.c.updated_at.type)
_CANCEL = (
    update(_DELIVERIES)
    .where(_DELIVERIES.c.id.in_(_IDS), _DELIVERIES.c.status == store.PENDING)
    .values(
        status=store.CANCELLED,
        next_attempt_at=None,
        lease_until=None,
        lease_owner=None,
        updated_at=_NOW,
    )
)
# A claim's lease, taken only where still free.
_TAKE = (
    update(_DELIVERIES)
    .where(
        _DELIVERIES.c.id.in_(_IDS),
        _DELIVERIES.c.status == store.PENDING,
        _lease_free(_NOW),
    )
    .values(
        lease_until=bindparam("lease_until", type_=_DELIVERIES.c.lease_until.type),
        lease_owner=bindparam("owner"),
    )
    .returning(_DELIVERIES.c.id)
)
_LOCK_RECORDED = (
    sa_select(_DELIVERIES.c.id, _DELIVERIES.c.succeeded_at)
    .where(_DELIVERIES.c.id.in_(_IDS))
    .order_by(_DELIVERIES.c.id)
    .with_for_update()
)
_HEALTH = sa_select(_ENDPOINTS.c.id, _ENDPOINTS.c.status, _ENDPOINTS.c.failing_since).where(
    _ENDPOINTS.c.id.in_(_IDS)
)
# Is a delivery still waiting behind one of these (endpoint, application) pairs?
_SUCCESSOR = (
    sa_select(_DELIVERIES.c.id)
    .where(
        _DELIVERIES.c.status == store.PENDING,
        tuple_(_DELIVERIES.c.endpoint_id, _DELIVERIES.c.application_id).in_(
            bindparam("pairs", expanding=True)
        ),
    )
    .limit(1)
)
# One attempt's result on its delivery; executed for many at once. The lease is given back.
_RECORD_DELIVERY = (
    update(_DELIVERIES)
    .where(_DELIVERIES.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        succeeded_at=func.coalesce(
            _DELIVERIES.c.succeeded_at,
            bindparam("b_succeeded_at", type_=_DELIVERIES.c.succeeded_at.type),
        ),
        attempt_count=bindparam("b_attempt_count"),
        round_attempts=bindparam("b_round_attempts"),
        next_attempt_at=bindparam("b_next_attempt_at"),
        last_status_code=bindparam("b_last_status_code"),
        last_error=bindparam("b_last_error"),
        lease_until=None,
        lease_owner=None,
        updated_at=bindparam("b_now"),
    )
)


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


class Clients:
    """Kept-alive HTTP connections per receiver host (scheme://host:port), in pools of one.

    An attempt borrows an idle pool of its host, or a new one, and gives it back when it is
    done, so a kept-alive connection only ever carries requests for the host it was opened
    for, even when two hosts share an address. Each pool holds a single connection because
    httpcore checks every connection of a pool (a socket poll each) on every request: one
    pool of 32 connections cost a third of the worker's CPU in a burst, 32 pools of one do
    not. At most `limit` idle pools are kept; the least recently used are closed first.

    The worker speaks to httpcore directly, below httpx's client (which it would only use
    for building the request): that halves the CPU of an attempt. httpcore never follows
    redirects nor uses proxies, which is what the URL pinning needs.
    """

    def __init__(self, make: Callable[[], Pool], limit: int = MAX_CLIENTS) -> None:
        self.make = make
        self.limit = limit
        self.idle: OrderedDict[str, list[Pool]] = OrderedDict()
        self.idle_count = 0

    @contextlib.asynccontextmanager
    async def borrow(self, origin: str) -> AsyncIterator[Pool]:
        pool = self.idle.get(origin)
        if pool:
            client = pool.pop()
            self.idle_count -= 1
        else:
            client = self.make()
        try:
            yield client
        except BaseException:
            await client.aclose()  # mid-request: its connection's state is unknown
            raise
        self.idle.setdefault(origin, []).append(client)
        self.idle.move_to_end(origin)
        self.idle_count += 1
        while self.idle_count > self.limit:
            oldest = next(iter(self.idle))
            extra = self.idle[oldest].pop(0)
            if not self.idle[oldest]:
                del self.idle[oldest]
            self.idle_count -= 1
            await extra.aclose()

    async def aclose(self) -> None:
        for pool in self.idle.values():
            for client in pool:
                await client.aclose()
        self.idle.clear()
        self.idle_count = 0


async def _drain(answer: httpcore.Response) -> None:
    """Read the (ignored) body of an answer, so its kept-alive connection can carry the next
    request: a response closed unread closes its connection. A body larger than
    MAX_DRAINED_BYTES is left unread and its connection dropped."""
    read = 0
    async for chunk in answer.aiter_stream():
        read += len(chunk)
        if read > MAX_DRAINED_BYTES:
            return


def _retry_after(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"retry-after":
            return value.decode("latin-1")
    return None


def _failing_reason(failing_since: datetime | None) -> str:
    since = failing_since.isoformat() if failing_since else "a long time"
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
