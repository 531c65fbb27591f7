"""`python -m bench.retention --applications N`: does the system stop growing?

Drives N applications (default 100,000) through the whole journey (submitted at intake, a
case opened in review, withdrawn by the applicant, the case closed, every webhook delivered
to the local receiver) with short retention settings, and prints, every `--every`
applications (default 10,000), Redis's memory and every table's row count. With retention
working the streams, the outboxes, the processed-event ids and notify's delivery log level
off; the applications and cases themselves are kept for good and grow.

The settings are seconds where production has days (stream retention, replay window,
redelivery horizon, delivery log); they keep the checks of shared/config.py (the horizon
above retention + replay).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import httpx
from sqlalchemy import text

from bench.loadgen import application_body
from bench.scenarios import create_companies, register_endpoints
from bench.system import Deployment, Process, Servers, wait_until

SHORT_RETENTION = {
    "REE_STREAM_RETENTION_SECONDS": "5",
    "REE_STREAM_TRIM_SECONDS": "1",
    "REE_OUTBOX_REPLAY_HOURS": "0.001",  # 3.6 s
    "REE_PROCESSED_EVENTS_HOURS": "0.004",  # 14.4 s, above 5 s + 3.6 s
    "REE_PRUNE_SECONDS": "1",
    "REE_DELIVERY_LOG_DAYS": "0.0002",  # 17.3 s
    # Webhooks are retried soon: a slow receiver must not hold deliveries pending for hours.
    "REE_WEBHOOK_RETRY_SCHEDULE": "1,2,5",
}
COMPONENTS = ("intake", "review", "notify")
STREAMS = ("intake.events", "review.events")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.retention", description=__doc__)
    parser.add_argument("--applications", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=10_000, help="print after this many")
    parser.add_argument("--companies", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    return parser.parse_args(argv)


async def journeys(intake: Process, keys: list[str], first: int, count: int, limit: int) -> int:
    """Submit and then withdraw `count` applications; returns how many were accepted."""
    gate = asyncio.Semaphore(limit)
    accepted = 0
    async with httpx.AsyncClient(base_url=intake.url, timeout=60) as client:

        async def post(path: str, headers: dict[str, str], body: Any = None) -> httpx.Response:
            # A shared machine's database may refuse a connection for a moment (503): the
            # answer says nothing was stored, so trying again is safe.
            for attempt in range(8):
                answer = await client.post(path, json=body, headers=headers)
                if answer.status_code not in (429, 503):
                    return answer
                await asyncio.sleep(0.2 * 2**attempt)
            return answer

        async def one(n: int) -> None:
            nonlocal accepted
            headers = {"authorization": f"Bearer {keys[n % len(keys)]}"}
            async with gate:
                made = await post("/v1/applications", headers, application_body(n))
                if made.status_code != 201:
                    raise RuntimeError(f"submit: {made.status_code} {made.text}")
                app_id = made.json()["id"]
                gone = await post(f"/v1/applications/{app_id}/withdraw", headers)
                if gone.status_code != 200:
                    raise RuntimeError(f"withdraw: {gone.status_code} {gone.text}")
                accepted += 1

        await asyncio.gather(*(one(n) for n in range(first, first + count)))
    return accepted


def counts(dep: Deployment, component: str, where: dict[str, str]) -> dict[str, int]:
    """Rows of each table in `where` of one component's schema (a WHERE clause, or "")."""
    engine = dep.engine(component)
    try:
        with engine.connect() as conn:
            return {
                table: int(
                    conn.execute(text(f'SELECT count(*) FROM "{table}" {clause}')).scalar_one()
                )
                for table, clause in where.items()
            }
    finally:
        engine.dispose()


def settled(dep: Deployment) -> bool:
    """Every outbox published, every group caught up, no webhook pending."""
    waiting = {"outbox": "WHERE published_at IS NULL"}
    for component in COMPONENTS:
        more = {"webhook_deliveries": "WHERE status = 'pending'"} if component == "notify" else {}
        if any(counts(dep, component, {**waiting, **more}).values()):
            return False
    r = dep.redis()
    for stream in STREAMS:
        for group in r.xinfo_groups(dep.prefix + stream):
            if group["pending"] or group.get("lag"):
                return False
    return True


def figures(dep: Deployment) -> dict[str, Any]:
    r = dep.redis()
    out: dict[str, Any] = {"redis_used_memory": r.info("memory")["used_memory_human"]}
    for stream in STREAMS:
        out[f"stream {stream}"] = r.xlen(dep.prefix + stream)
    for component in COMPONENTS:
        engine = dep.engine(component)
        with engine.connect() as conn:
            tables = conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            ).scalars()
            names = sorted(t for t in tables if t != "alembic_version")
        engine.dispose()
        rows = counts(dep, component, dict.fromkeys(names, ""))
        out.update({f"{component}.{table}": n for table, n in rows.items()})
    return out


def show(done: int, started: float, values: dict[str, Any]) -> None:
    print(f"--- after {done} applications ({time.monotonic() - started:.0f} s)", flush=True)
    for name, value in values.items():
        print(f"  {name:45} {value}", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    servers = Servers.find()
    dep = Deployment(servers, settings_env=SHORT_RETENTION)
    try:
        intake = dep.service("intake").wait_ready()
        dep.service("review").wait_ready()
        notify = dep.service("notify").wait_ready()
        receiver = dep.child("receiver", "bench.receiver").wait_ready("/_records")
        keys = create_companies(dep, args.companies)
        register_endpoints(notify, receiver, keys)
        started = time.monotonic()
        done = 0
        while done < args.applications:
            step = min(args.every, args.applications - done)
            done += asyncio.run(journeys(intake, keys, done, step, args.concurrency))
            wait_until(lambda: settled(dep), 1800, f"the journeys of {done} applications")
            show(done, started, figures(dep))
    finally:
        dep.close()
        servers.close()


if __name__ == "__main__":
    main()
