"""`python -m bench.retention --applications N`: does the system stop growing?

Drives N applications (default 100,000) through the whole journey with short retention
settings: submitted at intake, a case opened in review, admitted by an EU officer, sent to
China on a priority list by an EU supervisor, approved by a CN officer (the licence issued),
and every webhook of it (`application.received`, `application.status_changed`) delivered to
the local receiver. Every `--every` applications (default 10,000) it waits until the system
has settled (outboxes published, every group caught up, no webhook pending) and prints
Redis's memory and every table's row count, with the time taken. With retention working the
streams, the outboxes, the processed-event ids and notify's delivery log level off; the
applications, cases, audit entries and licences themselves are kept for good and grow.

The settings are seconds where production has days (stream retention, replay window,
redelivery horizon, delivery log); they keep the checks of shared/config.py (the horizon
above retention + replay). `--table PATH` also writes the figures as a Markdown table (one
column per print) for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bench.loadgen import application_body
from bench.scenarios import create_companies, create_official, register_endpoints
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
T = TypeVar("T")
COMPONENTS = ("intake", "review", "notify")
STREAMS = ("intake.events", "review.events")
# The largest priority list the API takes (PriorityListBody.max_cases).
LIST_SIZE = 5000


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.retention", description=__doc__)
    parser.add_argument("--applications", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=10_000, help="print after this many")
    parser.add_argument("--companies", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--table", type=Path, default=None, help="write a Markdown table here")
    return parser.parse_args(argv)


class Officials:
    """The bearer tokens of the officials who decide: EU officer and supervisor, CN officer."""

    def __init__(self, dep: Deployment) -> None:
        self.eu_officer = create_official(dep, "EU", "officer")
        self.eu_supervisor = create_official(dep, "EU", "supervisor")
        self.cn_officer = create_official(dep, "CN", "officer")


async def _post(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], body: Any = None
) -> httpx.Response:
    # A shared machine's database may refuse connections for minutes (503: every connection
    # of the server taken by others' work); the answer says nothing was stored, so trying
    # again is safe.
    deadline, attempt = time.monotonic() + 300, 0
    while True:
        answer = await client.post(path, json=body, headers=headers)
        if answer.status_code not in (429, 503) or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
        attempt += 1


async def _each(limit: int, calls: list[Callable[[], Awaitable[None]]]) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one(c) for c in calls))


async def submit(intake: Process, keys: list[str], first: int, count: int, limit: int) -> None:
    async with httpx.AsyncClient(base_url=intake.url, timeout=60) as client:

        def call(n: int) -> Callable[[], Awaitable[None]]:
            async def go() -> None:
                headers = {"authorization": f"Bearer {keys[n % len(keys)]}"}
                made = await _post(client, "/v1/applications", headers, application_body(n))
                if made.status_code != 201:
                    raise RuntimeError(f"submit: {made.status_code} {made.text}")

            return go

        await _each(limit, [call(n) for n in range(first, first + count)])


async def act_on_all(
    review: Process,
    token: str,
    cases: list[tuple[str, int]],
    body: Callable[[str], Any],
    limit: int,
) -> None:
    """One case action on each (case id, version), with If-Match; anything but 200 fails."""
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=review.url, timeout=60, headers=headers) as client:

        def call(case_id: str, version: int) -> Callable[[], Awaitable[None]]:
            async def go() -> None:
                answer = await _post(
                    client,
                    f"/v1/cases/{case_id}/actions",
                    {"if-match": str(version)},
                    body(case_id),
                )
                if answer.status_code != 200:
                    raise RuntimeError(
                        f"{body(case_id)['action']}: {answer.status_code} {answer.text}"
                    )

            return go

        await _each(limit, [call(i, v) for i, v in cases])


def patiently(read: Callable[[], T]) -> T:
    """`read()`, tried again for up to 5 minutes while PostgreSQL refuses connections (a
    shared server's `max_connections` is taken for a while by others' work)."""
    deadline = time.monotonic() + 300
    while True:
        try:
            return read()
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def cases_in(dep: Deployment, state: str) -> list[tuple[str, int]]:
    return patiently(lambda: _cases_in(dep, state))


def _cases_in(dep: Deployment, state: str) -> list[tuple[str, int]]:
    engine = dep.engine("review")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id, version FROM cases WHERE state = :state ORDER BY id"),
                {"state": state},
            ).all()
        return [(str(i), int(v)) for i, v in rows]
    finally:
        engine.dispose()


class Progress:
    """One line as each phase of a batch ends (a batch of 10,000 takes minutes): which
    applications, what was done to all of them, and the seconds the phase took."""

    def __init__(self, first: int, count: int) -> None:
        self.batch = f"applications {first + 1:,}-{first + count:,}"
        self.since = time.monotonic()

    def done(self, what: str) -> None:
        now = time.monotonic()
        print(f"[retention] {self.batch}: {what} ({now - self.since:.0f} s)", flush=True)
        self.since = now


def journeys(
    dep: Deployment,
    services: dict[str, Process],
    officials: Officials,
    keys: list[str],
    first: int,
    count: int,
    limit: int,
) -> None:
    """Take `count` new applications from submission to an issued licence."""
    intake, review = services["intake"], services["review"]
    phase = Progress(first, count)
    asyncio.run(submit(intake, keys, first, count, limit))
    phase.done("submitted at intake")

    def opened() -> list[tuple[str, int]]:
        cases = cases_in(dep, "eu_screening")
        return cases if len(cases) >= count else []

    screening = wait_until(opened, 1800, f"{count} cases opened")
    phase.done("opened as cases in review")
    admit = {"action": "admit"}
    asyncio.run(act_on_all(review, officials.eu_officer, screening, lambda _c: admit, limit))
    phase.done("admitted by the EU officer")
    while cases_in(dep, "queued"):
        answer = httpx.post(
            review.url + "/v1/priority-lists",
            json={"max_cases": LIST_SIZE},
            headers={"authorization": f"Bearer {officials.eu_supervisor}"},
            timeout=600,
        )
        answer.raise_for_status()
        if not answer.json()["cases"]:
            raise RuntimeError("a priority list took none of the queued cases")
    phase.done("sent to China on priority lists")
    today = date.today().isoformat()

    def approve(case_id: str) -> dict[str, Any]:
        licence = {"type": "annual", "number": f"LIC-{case_id}", "valid_from": today}
        return {"action": "approve", "licence": licence}

    sent = cases_in(dep, "cn_review")
    asyncio.run(act_on_all(review, officials.cn_officer, sent, approve, limit))
    phase.done("approved by the CN officer, licences issued")


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


def show(done: int, seconds: float, values: dict[str, Any]) -> None:
    print(f"--- after {done} applications ({seconds:.0f} s)", flush=True)
    for name, value in values.items():
        print(f"  {name:45} {value}", flush=True)


def markdown(prints: list[tuple[int, float, dict[str, Any]]]) -> str:
    """The prints as one table: a row per figure, a column per print."""
    header = ["applications", *[f"{done:,}" for done, _s, _v in prints]]
    rows = [["seconds", *[f"{s:,.0f}" for _d, s, _v in prints]]]
    for name in prints[-1][2]:
        cells = [v.get(name, "") for _d, _s, v in prints]
        rows.append([name, *[f"{c:,}" if isinstance(c, int) else str(c) for c in cells]])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    servers = Servers.find()
    dep = Deployment(servers, settings_env=SHORT_RETENTION)
    prints: list[tuple[int, float, dict[str, Any]]] = []
    try:
        services = {name: dep.service(name).wait_ready() for name in COMPONENTS}
        receiver = dep.child("receiver", "bench.receiver").wait_ready("/_records")
        keys = create_companies(dep, args.companies)
        register_endpoints(services["notify"], receiver, keys)
        officials = Officials(dep)
        started = time.monotonic()
        done = 0
        while done < args.applications:
            step = min(args.every, args.applications - done)
            journeys(dep, services, officials, keys, done, step, args.concurrency)
            done += step
            wait_until(lambda: settled(dep), 1800, f"the journeys of {done} applications")
            print(f"[retention] {done:,} applications: settled, counting", flush=True)
            prints.append((done, time.monotonic() - started, patiently(lambda: figures(dep))))
            show(*prints[-1])
            if args.table is not None:
                args.table.write_text(markdown(prints))
    finally:
        dep.close()
        servers.close()


if __name__ == "__main__":
    main()
