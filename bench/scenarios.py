"""The scenarios of docs/benchmarks.md; each starts its own deployment and cleans it up."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import text

from bench import consumer
from bench.scale import bulk_load
from bench.system import (
    Deployment,
    Process,
    Servers,
    cpu_probe_ms,
    run_loadgen,
    server_cpu_seconds,
    wait_until,
)
from services.review.domain.statistics import percentile
from shared.directory import open_directory

WEBHOOK_TYPES = ["application.received", "application.status_changed"]


@dataclass
class Plan:
    """How big and how long each scenario is (`--quick` shrinks everything)."""

    quick: bool
    levels: list[int]
    seconds: float
    # The rate last; a lower one first, to show what the system sustains end to end.
    e2e_rates: list[float]
    e2e_seconds: float
    burst: int
    scale_sizes: list[int]
    replica_events: int
    # Intake at half its peak, in several runs: each long enough that its p99 (the 1 % slowest)
    # is not decided by one hiccup, and several because the shared host's speed changes over
    # minutes (identical code gave 9-71 ms from one 20 s run to the next).
    half_seconds: float
    half_runs: int
    # The consumer on FastStream against the hand-written loop it replaced (bench/consumer.py):
    # events drained per run, and runs of each, alternating in fresh processes.
    consumer_events: int = 5000
    consumer_runs: int = 5
    # Where py-spy writes a profile of each service during each measured step (--profile).
    profile_dir: Path | None = None

    @classmethod
    def make(cls, quick: bool, scale_max: int | None) -> Plan:
        if quick:
            sizes = [s for s in (10_000, 100_000, 1_000_000) if s <= (scale_max or 10_000)]
            return cls(
                quick=True,
                levels=[1, 8, 32],
                seconds=3.0,
                e2e_rates=[25.0, 100.0],
                e2e_seconds=5.0,
                burst=200,
                scale_sizes=sizes or [scale_max or 10_000],
                replica_events=300,
                half_seconds=3.0,
                half_runs=2,
                consumer_events=1000,
                consumer_runs=2,
            )
        sizes = [s for s in (100_000, 1_000_000) if s <= (scale_max or 1_000_000)]
        return cls(
            quick=False,
            levels=[1, 4, 16, 64],
            seconds=10.0,
            e2e_rates=[25.0, 100.0],
            e2e_seconds=20.0,
            burst=2000,
            scale_sizes=sizes or [scale_max or 0],
            # 3,000 events drained in 3-6 s, where one stall of the host or a replica's
            # start moved the ratio by a quarter (1.45-1.81x, same code).
            replica_events=10_000,
            half_seconds=20.0,
            half_runs=3,
        )


@dataclass
class Results:
    """Everything measured, as the report prints it."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, section: str, **row: Any) -> None:
        self.rows.setdefault(section, []).append(row)
        shown = ", ".join(f"{k}={_short(v)}" for k, v in row.items())
        print(f"[bench] {section}: {shown}", flush=True)

    def note(self, text_: str) -> None:
        self.notes.append(text_)
        print(f"[bench] note: {text_}", flush=True)


def _short(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


# --- helpers ---------------------------------------------------------------------------------


def _profile_path(plan: Plan, label: str, process: Process) -> str:
    assert plan.profile_dir is not None
    return str(plan.profile_dir / f"{label}-{process.name.replace('#', '')}.txt")


@contextlib.contextmanager
def profiled(plan: Plan, label: str, processes: list[Process]) -> Iterator[None]:
    """With --profile, record each process with py-spy (CPU time only) while the block runs."""
    if plan.profile_dir is None:
        yield
        return
    plan.profile_dir.mkdir(parents=True, exist_ok=True)
    exe = str(Path(sys.executable).parent / "py-spy")
    options = ["--rate", "100", "--gil", "--format", "raw"]
    spies = [
        subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(p.pid),
                *options,
                "--output",
                _profile_path(plan, label, p),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in processes
    ]
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            try:
                spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()


def create_companies(dep: Deployment, count: int) -> list[str]:
    """Companies created as the operator command does; returns their API keys."""
    directory = open_directory(dep.settings())
    keys = []
    for _ in range(count):
        _company, key = directory.create_company(
            "Bench Magnetics GmbH", "DE" + uuid.uuid4().hex[:13].upper()
        )
        keys.append(key)
    directory.engine.dispose()
    return keys


def create_official(dep: Deployment, side: str, role: str) -> str:
    directory = open_directory(dep.settings())
    _official, token = directory.create_official(f"Bench {side} {role}", side, role)
    directory.engine.dispose()
    return token


async def _gather_limited(calls: list[Any], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(call: Any) -> Any:
        async with gate:
            return await call

    return await asyncio.gather(*(one(c) for c in calls))


def register_endpoints(notify: Process, receiver: Process, keys: list[str]) -> None:
    """One webhook endpoint per company, on the local receiver, which learns each secret."""

    async def run() -> dict[str, str]:
        async with httpx.AsyncClient(base_url=notify.url, timeout=30) as client:

            async def one(i: int, key: str) -> tuple[str, str]:
                answer = await client.post(
                    "/v1/webhook-endpoints",
                    json={"url": f"{receiver.url}/hook/{i}", "event_types": WEBHOOK_TYPES},
                    headers={"authorization": f"Bearer {key}"},
                )
                answer.raise_for_status()
                return str(i), answer.json()["secret"]

            pairs = await _gather_limited([one(i, k) for i, k in enumerate(keys)], 16)
        return dict(pairs)

    secrets = asyncio.run(run())
    httpx.post(receiver.url + "/_secrets", json=secrets, timeout=30).raise_for_status()


_RECEIVED: dict[tuple[int, int], list[dict[str, Any]]] = {}


def received(receiver: Process) -> list[dict[str, Any]]:
    """Every webhook the receiver verified so far; fetches only what is new since last time."""
    known = _RECEIVED.setdefault((receiver.port, receiver.pid), [])
    answer = httpx.get(receiver.url + "/_records", params={"since": len(known)}, timeout=30)
    known.extend(answer.json()["records"])
    return known


def outbox_pending(dep: Deployment, component: str) -> int:
    engine = dep.engine(component)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
        value = int(count.scalar_one())
    engine.dispose()
    return value


def percentile_ms(values: list[float], q: float) -> float | None:
    """The q-th quantile (0..1) of durations in seconds, in milliseconds."""
    value = percentile(values, q * 100)
    return None if value is None else value * 1000


def submit_backlog(intake: Process, keys: list[str], count: int) -> dict[str, Any]:
    """Submit `count` applications as fast as intake takes them (setup, not a measurement)."""
    return run_loadgen(
        {
            "mode": "closed",
            "url": intake.url,
            "path": "/v1/applications",
            "credentials": keys,
            "concurrency": 16,
            "duration": 3600,
            "warmup": 0,
            "max_requests": count,
        },
        timeout=3600,
    )


# --- intake against its baselines ------------------------------------------------------------


def intake_and_baselines(servers: Servers, plan: Plan, results: Results, only: set[str]) -> None:
    dep = Deployment(servers)
    try:
        intake = dep.service("intake").wait_ready()
        keys = create_companies(dep, 4)
        spec = {
            "mode": "closed",
            "url": intake.url,
            "path": "/v1/applications",
            "credentials": keys,
        }
        run_loadgen({**spec, "concurrency": 4, "duration": 2, "warmup": 0}, timeout=120)
        peak = 0.0
        if "intake" in only:
            for level in plan.levels:
                with profiled(plan, f"intake-c{level}", [intake]):
                    r = run_loadgen(
                        {**spec, "concurrency": level, "duration": plan.seconds}, timeout=600
                    )
                peak = max(peak, r["per_second"])
                results.add("intake", system="intake", **_figures(r))
            drained = _wait_drained(dep)
            results.note(f"intake outbox drained {drained:.1f} s after the last load step")
            half = max(1.0, peak / 2)
            for run in range(1, plan.half_runs + 1):
                # The host's speed just before the run, with no load of the benchmark's.
                probe = cpu_probe_ms()
                with profiled(plan, f"intake-half{run}", [intake]):
                    r = run_loadgen(
                        {**spec, "mode": "rate", "rate": half, "duration": plan.half_seconds},
                        timeout=600,
                    )
                results.add(
                    "intake_half",
                    system="intake",
                    run=run,
                    rate=round(half, 1),
                    cpu_probe_ms=round(probe, 1),
                    **_figures(r),
                )
            _rss(results, "after the intake load", intake)
        intake.stop()
        if "baseline" in only:
            base = dep.child("baseline", "bench.baseline").wait_ready()
            spec = {"mode": "closed", "url": base.url, "path": "/v1/applications"}
            run_loadgen({**spec, "concurrency": 4, "duration": 2, "warmup": 0}, timeout=120)
            for level in plan.levels:
                r = run_loadgen(
                    {**spec, "concurrency": level, "duration": plan.seconds}, timeout=600
                )
                results.add("intake", system="bare FastAPI + INSERT", **_figures(r))
            base.stop()
            for level in plan.levels:
                r = run_loadgen(
                    {
                        "mode": "xadd",
                        "redis_url": servers.redis_url,
                        "stream": dep.prefix + "bench.xadd",
                        "concurrency": level,
                        "duration": plan.seconds,
                    },
                    timeout=600,
                )
                results.add("intake", system="raw Redis XADD", **_figures(r))
    finally:
        dep.close()


def _rss(results: Results, when: str, process: Process) -> None:
    results.add("rss", scenario=when, service=process.name.split("#")[0], rss_mb=process.rss_mb())


def _figures(r: dict[str, Any]) -> dict[str, Any]:
    figures = {
        "concurrency": r.get("concurrency"),
        "per_second": r["per_second"],
        "p50_ms": r["p50"],
        "p99_ms": r["p99"],
        "ok": r["ok"],
        "errors": sum(n for s, n in r["statuses"].items() if not s.startswith("2") and s != "ok"),
    }
    if r["mode"] == "rate":
        figures.pop("concurrency")
    return figures


def _wait_drained(dep: Deployment, component: str = "intake", timeout: float = 120) -> float:
    started = time.monotonic()
    wait_until(lambda: outbox_pending(dep, component) == 0, timeout, f"{component} outbox drained")
    return time.monotonic() - started


# --- end to end and the burst ------------------------------------------------------------------


def end_to_end_and_burst(servers: Servers, plan: Plan, results: Results, only: set[str]) -> None:
    dep = Deployment(servers)
    try:
        intake = dep.service("intake")
        review = dep.service("review")
        notify = dep.service("notify")
        receiver = dep.child("receiver", "bench.receiver")
        for p in (intake, review, notify, receiver):
            p.wait_ready()
        companies = max(plan.burst, 50)
        keys = create_companies(dep, companies)
        register_endpoints(notify, receiver, keys)
        officer = create_official(dep, "EU", "officer")
        supervisor = create_official(dep, "EU", "supervisor")
        submitted: dict[str, float] = {}
        if "e2e" in only:
            for rate in plan.e2e_rates:
                with profiled(plan, f"e2e-{rate:g}", [intake, review, notify]):
                    sent = _end_to_end(dep, plan, results, intake, receiver, keys, rate)
                submitted.update(sent)
        if "burst" in only:
            # The same burst again (new cases) with a second notify replica: what scaling
            # out the one service the burst loads buys on these cores.
            for count in (1, 2):
                replicas = [notify] if count == 1 else [notify, dep.service("notify", 1)]
                for p in replicas:
                    p.wait_ready()
                _burst(
                    dep,
                    plan,
                    results,
                    intake,
                    review,
                    replicas,
                    receiver,
                    keys,
                    officer,
                    supervisor,
                    submitted if count == 1 else {},
                )
        for p in (intake, review, notify):
            _rss(results, "after e2e and burst", p)
    finally:
        dep.close()


# Whose CPU time the end-to-end step adds up per application (not the load generator's).
CPU_ACCOUNTED = ("intake", "review", "notify", "receiver")
SERVER_COMMANDS = ("postgres", "redis-server")


def _end_to_end(
    dep: Deployment,
    plan: Plan,
    results: Results,
    intake: Process,
    receiver: Process,
    keys: list[str],
    rate: float,
) -> dict[str, float]:
    processes = [p for p in dep.processes if p.name.split("#")[0] in CPU_ACCOUNTED]
    cpu_before = {p.name: p.cpu_seconds() for p in processes}
    servers_before = {name: server_cpu_seconds(name) for name in SERVER_COMMANDS}
    r = run_loadgen(
        {
            "mode": "rate",
            "url": intake.url,
            "path": "/v1/applications",
            "credentials": keys,
            "rate": rate,
            "duration": plan.e2e_seconds,
            "records": True,
        },
        timeout=600,
    )
    sent = {rec["id"]: rec["sent_at"] for rec in r["records"]}
    engine = dep.engine("review")

    def opened() -> dict[str, float]:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT application_id, opened_at FROM cases")).all()
        return {a: o.timestamp() for a, o in rows if a in sent}

    def webhooks() -> dict[str, float]:
        out: dict[str, float] = {}
        for rec in received(receiver):
            if rec["type"] == "application.received" and rec["application_id"] in sent:
                out.setdefault(rec["application_id"], rec["at"])
        return out

    cases = wait_until(lambda: _complete(opened(), len(sent)), 600, "cases opened")
    hooks = wait_until(lambda: _complete(webhooks(), len(sent)), 900, "webhooks delivered")
    engine.dispose()
    # CPU per application, over the whole journey (every process that took part, until the
    # last webhook): what a rate costs these two cores, whatever the latency was.
    used = {p.name.split("#")[0]: p.cpu_seconds() - cpu_before[p.name] for p in processes}
    used.update({n: server_cpu_seconds(n) - servers_before[n] for n in SERVER_COMMANDS})
    results.add(
        "e2e_cpu",
        rate=rate,
        applications=len(sent),
        **{f"{name}_ms": 1000 * seconds / max(1, len(sent)) for name, seconds in used.items()},
        total_ms=1000 * sum(used.values()) / max(1, len(sent)),
    )
    to_case = [cases[a] - sent[a] for a in sent]
    to_hook = [hooks[a] - sent[a] for a in sent]
    for what, values in (("case opened in review", to_case), ("webhook verified", to_hook)):
        results.add(
            "e2e",
            path=f"submit → {what}",
            rate=rate,
            applications=len(sent),
            p50_ms=percentile_ms(values, 0.5),
            p99_ms=percentile_ms(values, 0.99),
            max_ms=max(values) * 1000,
        )
    results.add(
        "e2e",
        path="submit (HTTP answer)",
        rate=rate,
        applications=r["ok"],
        p50_ms=r["p50"],
        p99_ms=r["p99"],
        max_ms=r["max"],
    )
    return sent


def _burst(
    dep: Deployment,
    plan: Plan,
    results: Results,
    intake: Process,
    review: Process,
    notify: list[Process],
    receiver: Process,
    keys: list[str],
    officer: str,
    supervisor: str,
    submitted: dict[str, float],
) -> None:
    engine = dep.engine("review")
    have = len(submitted)
    if have < plan.burst:
        submit_backlog(intake, keys, plan.burst - have)
    wait_until(
        lambda: (
            _count(engine, "SELECT count(*) FROM cases WHERE state = 'eu_screening'") >= plan.burst
        ),
        180,
        "burst cases opened",
    )
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, version, application_id FROM cases WHERE state = 'eu_screening'")
        ).all()
    rows = rows[: plan.burst]
    apps = {a for _i, _v, a in rows}

    async def admit_all() -> list[int]:
        async with httpx.AsyncClient(
            base_url=review.url, timeout=60, headers={"authorization": f"Bearer {officer}"}
        ) as client:

            async def one(case_id: str, version: int) -> int:
                answer = await client.post(
                    f"/v1/cases/{case_id}/actions",
                    json={"action": "admit"},
                    headers={"if-match": str(version)},
                )
                return answer.status_code

            return await _gather_limited([one(i, v) for i, v, _a in rows], 8)

    statuses = asyncio.run(admit_all())
    if any(s != 200 for s in statuses):
        results.note(f"burst setup: admit answered {sorted(set(statuses))}")

    def changes_since(since: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for rec in received(receiver):
            if (
                rec["type"] == "application.status_changed"
                and rec["at"] >= since
                and rec["application_id"] in apps
            ):
                out.setdefault(rec["application_id"], rec["at"])
        return out

    # Every admission's webhook is out before the list goes, so the burst is measured alone.
    wait_until(lambda: len(changes_since(0)) >= len(apps), 300, "admission webhooks")
    time.sleep(1.0)
    cpu_before = {p.name: p.cpu_seconds() for p in (review, *notify, receiver)}
    postgres_before = server_cpu_seconds("postgres")
    with profiled(plan, "burst", [review, *notify]):
        started = time.time()
        answer = httpx.post(
            review.url + "/v1/priority-lists",
            json={"max_cases": plan.burst},
            headers={"authorization": f"Bearer {supervisor}"},
            timeout=300,
        )
        answered = time.time()
        answer.raise_for_status()
        listed = len(answer.json()["cases"])
        delivered = wait_until(
            lambda: _complete(changes_since(started), listed), 600, "burst webhooks"
        )
    engine.dispose()
    last = max(delivered.values())
    # CPU from the list to the last webhook: what the burst costs, whatever the machine's speed.
    used = {p.name: p.cpu_seconds() - cpu_before[p.name] for p in (review, *notify, receiver)}
    results.add(
        "burst",
        notify_replicas=len(notify),
        cases=listed,
        list_answer_s=answered - started,
        first_webhook_s=min(delivered.values()) - started,
        all_webhooks_s=last - started,
        webhooks_per_s=listed / (last - started),
        review_cpu_ms=1000 * used[review.name] / max(1, listed),
        notify_cpu_ms=1000 * sum(used[p.name] for p in notify) / max(1, listed),
        receiver_cpu_ms=1000 * used[receiver.name] / max(1, listed),
        postgres_cpu_ms=1000 * (server_cpu_seconds("postgres") - postgres_before) / max(1, listed),
    )


def _complete(values: dict[str, float], expected: int) -> dict[str, float]:
    return values if len(values) >= expected else {}


def _count(engine: Any, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


# --- scale ---------------------------------------------------------------------------------------


def search_checks(size: int, eu: str, cn: str) -> list[tuple[str, str, str]]:
    """The searches measured at `size` bulk-loaded cases (bench/scale.py's numbering): a MOFCOM
    number whole and in part (its serial), and a company's name (200 cases at a million)."""
    # A case in the middle that China has too: a number that is a multiple of 20 is approved.
    serial = f"{max(20, size // 40 * 20):07d}"
    whole = urlencode({"q": f"MOFCOM-2025-{serial}"})
    return [
        ("search, EU, MOFCOM number", eu, f"/v1/cases?{whole}"),
        ("search, EU, part of a MOFCOM number", eu, f"/v1/cases?{urlencode({'q': serial})}"),
        ("search, EU, company name", eu, f"/v1/cases?{urlencode({'q': 'Bulk Company 4321'})}"),
        ("search, CN, MOFCOM number", cn, f"/v1/cases?{whole}"),
    ]


def scale(servers: Servers, plan: Plan, results: Results) -> None:
    dep = Deployment(servers)
    try:
        intake = dep.service("intake")
        review = dep.service("review")
        notify = dep.service("notify")
        for p in (intake, review, notify):
            p.wait_ready()
        eu = create_official(dep, "EU", "officer")
        cn = create_official(dep, "CN", "officer")
        engine = dep.engine("review")
        loaded = 0
        for size in plan.scale_sizes:
            started = time.monotonic()
            bulk_load(engine, loaded, size)
            results.note(
                f"bulk load {loaded:,} → {size:,} cases took {time.monotonic() - started:.0f} s"
            )
            loaded = size
            checks = [
                ("queue, EU, first page", eu, "/v1/cases"),
                ("queue, EU, state=queued", eu, "/v1/cases?state=queued"),
                ("queue, EU, tier=P1", eu, "/v1/cases?tier=P1"),
                ("queue, EU, page 21 (offset 1000)", eu, "/v1/cases?offset=1000"),
                ("queue, CN, first page", cn, "/v1/cases"),
                *search_checks(size, eu, cn),
            ]
            for label, token, path in checks:
                with profiled(plan, f"scale-{size}-{label.replace(' ', '')}", [review]):
                    r = run_loadgen(
                        {
                            "mode": "closed",
                            "method": "GET",
                            "url": review.url,
                            "path": path,
                            "credentials": [token],
                            "concurrency": 2,
                            "duration": plan.seconds,
                            "warmup": 0.5,
                            "timeout": 60,
                        },
                        timeout=600,
                    )
                results.add("scale", cases=size, query=label, **_figures(r))
            for p in (intake, review, notify):
                _rss(results, f"{size:,} cases", p)
            r = run_loadgen(
                {
                    "mode": "closed",
                    "method": "GET",
                    "url": review.url,
                    "path": "/v1/metrics/summary",
                    "credentials": [eu],
                    "concurrency": 1,
                    "duration": plan.seconds,
                    "timeout": 300,
                },
                timeout=1200,
            )
            results.add("scale", cases=size, query="metrics summary", **_figures(r))
            _rss(results, f"{size:,} cases, after metrics summary", review)
            # The summary's memory stays with the process: the next size starts a fresh one.
            review.stop()
            review = dep.service("review", replica=size).wait_ready()
        engine.dispose()
    finally:
        dep.close()


# --- consumers -------------------------------------------------------------------------------

CONSUMERS = {"old": "hand-written loop (8af5417)", "new": "FastStream 0.7 (shared/consumer.py)"}


def consumers(servers: Servers, plan: Plan, results: Results) -> None:
    """The same events through the same handler, by the pre-FastStream loop and by today's
    consumer, alternating in fresh processes (bench/consumer.py, bench/legacy_consumer.py)."""
    runs = consumer.compare(
        consumer.LEGACY,
        plan.consumer_runs,
        plan.consumer_events,
        env={"DATABASE_URL": servers.database_url, "REDIS_URL": servers.redis_url},
    )
    for label, rows in runs.items():
        for n, r in enumerate(rows, 1):
            results.add(
                "consumer_runs",
                consumer=CONSUMERS[label],
                run=n,
                events=r["events"],
                events_per_s=r["events_per_s"],
                cpu_ms_per_event=r["cpu_ms_per_event"],
                steady_cpu_ms_per_event=r["steady_cpu_ms_per_event"],
            )
    for label in ("old", "new"):
        rows = runs[label]
        results.add(
            "consumers",
            kind=label,
            consumer=CONSUMERS[label],
            runs=len(rows),
            events=plan.consumer_events,
            events_per_s=statistics.median(r["events_per_s"] for r in rows),
            cpu_ms_per_event=statistics.median(r["cpu_ms_per_event"] for r in rows),
            steady_cpu_ms_per_event=statistics.median(r["steady_cpu_ms_per_event"] for r in rows),
        )


# --- replicas ----------------------------------------------------------------------------------


def replicas(servers: Servers, plan: Plan, results: Results) -> None:
    """Drain the same backlog with 1 and then 2 replicas of review, and of notify."""
    for count in (1, 2):
        dep = Deployment(servers)
        try:
            _drain_with(dep, count, plan, results)
        finally:
            dep.close()


def _drain_with(dep: Deployment, count: int, plan: Plan, results: Results) -> None:
    intake = dep.service("intake")
    notify = dep.service("notify")
    receiver = dep.child("receiver", "bench.receiver")
    for p in (intake, notify, receiver):
        p.wait_ready()
    keys = create_companies(dep, 50)
    register_endpoints(notify, receiver, keys)
    notify.stop()
    submit_backlog(intake, keys, plan.replica_events)
    _wait_drained(dep)
    # Intake's part is done (the backlog is in the stream); left running, its projection of
    # review's events would take CPU from the replicas under test.
    intake.stop()
    engine = dep.engine("review")
    reviews = [dep.service("review", i) for i in range(count)]
    usage = _CpuUsage(reviews)
    opened = wait_until(lambda: _opened_times(engine, plan.replica_events), 600, "backlog applied")
    cores = usage.cores()
    for p in reviews:
        p.stop()
    engine.dispose()
    results.add(
        "replicas",
        service="review",
        replicas=count,
        events=len(opened),
        per_second=(len(opened) - 1) / (max(opened) - min(opened)),
        **cores,
    )
    notifies = [dep.service("notify", i + 1) for i in range(count)]
    usage = _CpuUsage([*notifies, receiver])

    def hooks() -> list[float]:
        times = [r["at"] for r in received(receiver) if r["type"] == "application.received"]
        return times if len(times) >= plan.replica_events else []

    times = wait_until(hooks, 600, "backlog delivered")
    cores = usage.cores()
    for p in notifies:
        p.stop()
    results.add(
        "replicas",
        service="notify",
        replicas=count,
        events=len(times),
        per_second=(len(times) - 1) / (max(times) - min(times)),
        **cores,
    )


class _CpuUsage:
    """Cores used by these processes and the servers, from when the processes are ready
    (their start-up is not counted) until `cores` is called."""

    def __init__(self, processes: list[Process]) -> None:
        for p in processes:
            p.wait_ready()
        self.processes = processes
        self.before = [p.cpu_seconds() for p in processes]
        self.servers = {name: server_cpu_seconds(name) for name in SERVER_COMMANDS}
        self.started = time.monotonic()

    def cores(self) -> dict[str, float]:
        wall = time.monotonic() - self.started
        used: dict[str, float] = {}
        for p, before in zip(self.processes, self.before, strict=True):
            name = p.name.split("#")[0]
            used[name] = used.get(name, 0.0) + p.cpu_seconds() - before
        for name, before_s in self.servers.items():
            used[name] = server_cpu_seconds(name) - before_s
        return {f"{name}_cores": round(seconds / wall, 2) for name, seconds in used.items()}


def _opened_times(engine: Any, expected: int) -> list[float]:
    with engine.connect() as conn:
        times = [t.timestamp() for (t,) in conn.execute(text("SELECT opened_at FROM cases"))]
    return times if len(times) >= expected else []
