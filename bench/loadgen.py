"""The load generator: its own process, an async httpx client (or redis-py for XADD).

Reads one JSON spec on stdin, drives the load it describes against loopback, prints one JSON
result on stdout. Every loop is bounded by a duration or a count, so it always stops.

Modes:
- `closed`: `concurrency` workers each send the next request as soon as the last answered,
  for `duration` seconds after `warmup` seconds (the warm-up is not counted).
- `rate`: requests started at a fixed `rate` per second for `duration` seconds, whatever the
  answers' latency (open loop), at most `max_inflight` at a time.
- `xadd`: like `closed`, with XADD of an application.submitted-sized event instead of HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import os
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.review.domain.statistics import percentile

ELEMENTS = [("Dy", "metal", "2805.30"), ("Tb", "oxide", "2846.90"), ("Nd", "magnet", "8505.11")]
CATEGORIES = ["automotive", "wind_energy", "semiconductors", "robotics", "medical"]


def application_body(n: int, run: str = "") -> dict[str, Any]:
    """A valid application (API.md), varied a little so priority rules and groups differ;
    `run` keeps the MOFCOM numbers of one run apart from another's (a company registers a
    number once)."""
    element, form, hs = ELEMENTS[n % len(ELEMENTS)]
    return {
        "mofcom_application_number": f"MOFCOM-2026-{run}{n:07d}",
        "licence_type": "three_month" if n % 4 else "annual",
        "exporter": {"name": "Baotou Magnet Co.", "uscc": "91150200MA0N1X2Y3Z"},
        "consignee": {"name": "Bosch GmbH", "country": "DE"},
        "end_user": {"name": "Bosch GmbH", "country": "DE"},
        "end_use": {
            "category": CATEGORIES[n % len(CATEGORIES)],
            "description": "traction motors for EV platform X",
        },
        "goods": [
            {
                "element": element,
                "form": form,
                "hs_code": hs,
                "quantity_kg": 120.5 + n % 50,
                "value_eur": 51000,
            }
        ],
        "urgency": {
            "stock_days": 5 + n % 60,
            # Ahead of today: intake refuses a production stop date in the past.
            "production_stop_date": (datetime.now(UTC).date() + timedelta(days=14)).isoformat(),
            "jobs_at_risk": 100 + n % 900,
        },
        "sme": n % 3 == 0,
    }


def percentiles(latencies: list[float]) -> dict[str, float | None]:
    if not latencies:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    ordered = sorted(latencies)

    def pick(q: float) -> float:
        return float(percentile(ordered, q * 100) or 0.0) * 1000

    return {"p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99), "max": ordered[-1] * 1000}


# method, path, headers, body, number
Request = tuple[str, str, dict[str, str], bytes | None, int]


class Requests:
    """What each request is: method, path, body and headers, from the spec."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.method = spec.get("method", "POST")
        self.paths: list[str] = spec.get("paths") or [spec.get("path", "/")]
        self.keys: list[str] = spec.get("credentials") or [""]
        self.body = spec.get("body", "application")
        self.idempotency = bool(spec.get("idempotency", True))
        self.counter = itertools.count(int(spec.get("first_number", 1)))
        # Runs against one deployment reuse its companies and start counting again at 1.
        self.run = uuid.uuid4().hex[:8].upper() + "-"

    def next(self) -> Request:
        n = next(self.counter)
        headers = {"content-type": "application/json"}
        key = self.keys[n % len(self.keys)]
        if key:
            headers["authorization"] = f"Bearer {key}"
        content = None
        if self.method == "POST" and self.body == "application":
            content = json.dumps(application_body(n, self.run)).encode()
            if self.idempotency:
                headers["idempotency-key"] = uuid.uuid4().hex
        return self.method, self.paths[n % len(self.paths)], headers, content, n


def _client(spec: dict[str, Any], connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=spec["url"],
        timeout=float(spec.get("timeout", 30)),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        trust_env=False,
    )


async def closed_loop(spec: dict[str, Any]) -> dict[str, Any]:
    concurrency = int(spec["concurrency"])
    duration, warmup = float(spec["duration"]), float(spec.get("warmup", 1.0))
    max_requests = int(spec.get("max_requests", 10_000_000))
    requests = Requests(spec)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    sent = 0
    # One client (one keep-alive connection) per worker: httpx's pool does work per request
    # that grows with its number of connections, which would load the generator, not the server.
    clients = [_client(spec, 1) for _ in range(concurrency)]
    async with contextlib.AsyncExitStack() as stack:
        for c in clients:
            await stack.enter_async_context(c)
        start = time.perf_counter()
        measure_from, end = start + warmup, start + warmup + duration

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal sent
            while (now := time.perf_counter()) < end and sent < max_requests:
                sent += 1
                method, path, headers, content, _n = requests.next()
                t0 = time.perf_counter()
                try:
                    answer = await client.request(method, path, headers=headers, content=content)
                    status = str(answer.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                t1 = time.perf_counter()
                if t0 >= measure_from and t1 <= end:
                    statuses[status] += 1
                    if status.startswith("2"):
                        latencies.append(t1 - t0)
                del now

        await asyncio.gather(*(worker(c) for c in clients))
        elapsed = min(time.perf_counter(), end) - measure_from
    return {
        "mode": "closed",
        "concurrency": concurrency,
        "seconds": elapsed,
        "ok": len(latencies),
        "statuses": dict(statuses),
        "per_second": len(latencies) / elapsed if elapsed > 0 else 0.0,
        **percentiles(latencies),
    }


async def fixed_rate(spec: dict[str, Any]) -> dict[str, Any]:
    rate, duration = float(spec["rate"]), float(spec["duration"])
    max_inflight = int(spec.get("max_inflight", 500))
    keep_records = bool(spec.get("records", False))
    requests = Requests(spec)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    records: list[dict[str, Any]] = []
    inflight = asyncio.Semaphore(max_inflight)
    total = int(rate * duration)
    late = 0
    # Several small clients rather than one with hundreds of connections (see closed_loop).
    clients = [_client(spec, 8) for _ in range(max(1, max_inflight // 8))]
    async with contextlib.AsyncExitStack() as stack:
        for c in clients:
            await stack.enter_async_context(c)

        async def one(client: httpx.AsyncClient, request: Request) -> None:
            async with inflight:
                method, path, headers, content, _n = request
                sent_at = time.time()
                t0 = time.perf_counter()
                try:
                    answer = await client.request(method, path, headers=headers, content=content)
                    status = str(answer.status_code)
                except httpx.HTTPError as exc:
                    answer, status = None, type(exc).__name__
                t1 = time.perf_counter()
                statuses[status] += 1
                if status.startswith("2"):
                    latencies.append(t1 - t0)
                    if keep_records and answer is not None:
                        records.append({"id": answer.json().get("id"), "sent_at": sent_at})

        # Every request made before the clock starts: building them (a JSON body, a key) is
        # the generator's work, and at a few hundred a second it took CPU from the server.
        prepared = [requests.next() for _ in range(total)]
        tasks = []
        start = time.perf_counter()
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.05:
                late += 1
            tasks.append(asyncio.create_task(one(clients[i % len(clients)], prepared[i])))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return {
        "mode": "rate",
        "rate": rate,
        "sent": total,
        "late_starts": late,
        "seconds": elapsed,
        "ok": len(latencies),
        "statuses": dict(statuses),
        "per_second": len(latencies) / elapsed if elapsed > 0 else 0.0,
        "records": records,
        **percentiles(latencies),
    }


async def xadd_loop(spec: dict[str, Any]) -> dict[str, Any]:
    import redis.asyncio as aioredis

    concurrency = int(spec["concurrency"])
    duration, warmup = float(spec["duration"]), float(spec.get("warmup", 1.0))
    stream = spec["stream"]
    client = aioredis.Redis.from_url(
        spec["redis_url"], decode_responses=True, max_connections=concurrency
    )
    # The same stream fields an application.submitted event carries (shared/events.py).
    data = json.dumps({"application": application_body(1), "reference": "REC-2026-000001"})
    fields: dict[Any, Any] = {
        "specversion": "1.0",
        "id": "",
        "source": "reechannel/intake",
        "type": "application.submitted",
        "subject": "",
        "time": "2026-01-01T00:00:00+00:00",
        "datacontenttype": "application/json",
        "schemaversion": "1",
        "data": data,
    }
    latencies: list[float] = []
    start = time.perf_counter()
    measure_from, end = start + warmup, start + warmup + duration

    async def worker() -> None:
        while time.perf_counter() < end:
            event_id = uuid.uuid4().hex
            t0 = time.perf_counter()
            await client.xadd(stream, {**fields, "id": event_id, "subject": event_id})
            t1 = time.perf_counter()
            if t0 >= measure_from and t1 <= end:
                latencies.append(t1 - t0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await client.delete(stream)
    await client.aclose()
    elapsed = duration
    return {
        "mode": "xadd",
        "concurrency": concurrency,
        "seconds": elapsed,
        "ok": len(latencies),
        "statuses": {"ok": len(latencies)},
        "per_second": len(latencies) / elapsed,
        **percentiles(latencies),
    }


MODES = {"closed": closed_loop, "rate": fixed_rate, "xadd": xadd_loop}


def main() -> None:
    spec = json.loads(sys.stdin.read())
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    # No collector pauses in the measuring process: a full collection (its heap grows with
    # every answer it keeps) stalled the event loop for tens of milliseconds, and each
    # request in flight meanwhile was timed that much slower. A run is bounded, and reference
    # counting frees nearly all it makes.
    gc.collect()
    gc.freeze()
    gc.disable()
    result = asyncio.run(MODES[spec["mode"]](spec))
    # The event loop may leave stdout non-blocking: a large result would then be cut off
    # when the pipe is full. Blocking again, and flushed, it arrives whole.
    os.set_blocking(sys.stdout.fileno(), True)
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
