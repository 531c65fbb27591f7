"""The machine description, the tables, the targets, and docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.scenarios import Plan, Results
from bench.system import ROOT, Servers

METHOD = """\
How it was measured (all of it by `python -m bench`, bench/ in the repository):

- The services run as real processes (`python -m services.<name>`, uvicorn, one worker
  each) on PostgreSQL and Redis, in a schema and stream prefix of their own per scenario
  (`REE_SCHEMA_PREFIX`/`REE_STREAM_PREFIX` = `bench<hex>_`), dropped afterwards. The
  per-credential rate limit is lifted (`REE_RATE_LIMIT_PER_MINUTE`), since the load comes
  from a few API keys; notify may deliver to the loopback receiver over HTTP.
- The load comes from `bench/loadgen.py` in its own process: an async httpx client on
  uvloop, keep-alive connections. *Closed loop*: N workers, each sends its next request when
  the last one answered, 1 s warm-up not counted. *Fixed rate*: requests start on a fixed
  schedule whatever the latency (open loop). Latency is from sending the request to the
  whole answer; percentiles interpolate between closest ranks (the metrics' own
  `percentile`, domain/statistics.py; runs up to 2026-12-01 used nearest rank). The load
  generator runs with its garbage collector off (one full collection of its own stalled
  its loop for 95 ms in a 10 s step, and every request in flight was timed that much
  slower); the webhook receiver freezes what its imports left.
- Baselines, same run, same load generator: *bare FastAPI + INSERT* (`bench/baseline.py`):
  one route that validates the same `ApplicationBody` and does one INSERT … RETURNING
  through the same SQLAlchemy engine settings, nothing else (no auth, outbox or events);
  *raw Redis XADD*: redis-py's asyncio client adding an event of the same fields and size.
- Intake is measured alone (with its outbox relay publishing to Redis), like the baseline;
  end to end runs all three services, the webhook receiver and the load generator together.
- End to end: applications at a fixed rate, one company per application slot, each company
  with a webhook endpoint on `bench/receiver.py`, which verifies every Standard Webhooks
  signature and notes the time. *Case opened* is review's `cases.opened_at` (set in the
  consumer's transaction); *webhook verified* is the receiver's clock after verifying.
  All clocks are this machine's.
- Burst: the cases of those applications are admitted by an EU officer and their webhooks
  delivered first; then an EU supervisor issues one priority list of all of them
  (`POST /v1/priority-lists`), and the clock runs until the receiver has verified every
  applicant's `application.status_changed` webhook for it. Then the same again with 2,000
  new cases and a second notify replica started (the burst loads notify alone). Its CPU
  columns are each process's CPU time from the list to the last webhook, per case.
- Scale: cases (and their state-changing audit entries) are generated into review's tables
  by PostgreSQL (`INSERT … SELECT` over `generate_series`, `bench/scale.py`), then
  `VACUUM ANALYZE`. Queue pages and searches (`q=`: a MOFCOM number whole, its serial
  alone, a company's name shared by 1 in 5,000 cases; `bench/scenarios.py: search_checks`)
  are read by two concurrent clients for the step's duration; the metrics summary by one
  client for the step's duration. RSS is each process's VmRSS.
- Replicas: a backlog of applications is submitted with review and notify stopped, then
  intake is stopped too; then 1 (or 2) replicas of review are started and the rate at which
  cases open is taken from the first to the last case; the same for notify with webhooks
  verified at the receiver. Each replica count gets a fresh deployment and the same backlog
  size. *Cores used*: each process's CPU time (the replicas added up) from when the replicas
  were ready until the backlog was through, over that wall time; 2.0 is the whole machine.
- Consumers (`bench/consumer.py`): N `application.submitted` events are put on a fresh
  stream of the run's Redis, then one consumer drains them in its own process into
  PostgreSQL (a schema of its own, dropped after), through the same handler (one that does
  nothing, so what is timed is the consumer: XREADGROUP, the transaction with the
  processed-event record, XACK after the commit), with the consumer group created at 0.
  *Hand-written loop* is `bench/legacy_consumer.py`, the loop of `shared/consumer.py` at
  8af5417 (before FastStream) over today's apply path; *FastStream* is today's
  `shared/consumer.py`. The two alternate, a fresh process each run; events/s is from the
  start of `run` to the last commit, CPU the process's, *steady* from the first commit on.
"""


FINDINGS = """\
What the profiles show (`python -m bench --profile DIR` records every service with py-spy
during each step; the figures above come from a run without it):

- **Intake** spent its CPU in SQLAlchemy's ORM and psycopg (six statements and a
  unit-of-work flush per application: idempotency lookup, reference number, application,
  outbox event, timeline entry, idempotency key), in two thread hops through anyio
  (authentication, then the route), in pydantic (the body validated twice, the answer built
  through three models) and in the outbox relay, which ran a pass per request. Changed
  since: `POST /v1/applications` writes its rows with plain SQL, on PostgreSQL in two round
  trips in psycopg's pipeline mode (the key lookup and the reference number in one
  statement; every row in one statement with data-modifying CTEs, then `COMMIT`); the answer
  and the event are built as plain JSON from the validated body (a unit test checks them
  against the models); the route is async with one plain executor hop for the writes, and
  authentication one for its query (FastAPI's own hop for a sync function costs more); the
  credential query and the writes run on plain psycopg connections (`shared/rawpg.py`)
  instead of SQLAlchemy's pool, which pinged every connection it handed out (a round trip
  each) and whose statement machinery cost about three times the credential query itself;
  the relay takes its lock and checks Redis's memory in one script call, reads only the
  columns it needs through Core, and after a pass that published anything waits 20 ms before
  the next, so under load a pass carries many events. Still per application, as the contract
  needs: one directory query (revocation immediate), the rows and the commit, and the
  relay's share. Tried and dropped: the credential query on a psycopg asyncio connection (no
  thread hop), whose waits cost more CPU than the hop. Fixed earlier: the directory lookup
  on every request is one indexed query outside a transaction (it was an ORM session and two
  queries), the answer to a new application is built from what was just written (it read
  three tables back), the role checks no longer cost a thread hop each, the request-timing
  middleware is plain ASGI (no task per request), and the relay marks a batch published with
  one executemany (it was one UPDATE per row).
- **Notify** was the largest CPU user end to end and during the burst: its delivery worker
  re-read the whole unconsumed backlog of both streams from Redis on every pass (a third of
  its CPU), claimed one delivery per UPDATE after every single attempt, opened a new
  connection per attempt and recorded each attempt in its own transaction. Now
  (services/notify/worker.py, backlog.py): `XINFO GROUPS` first (no lag and nothing
  pending: nothing to read), otherwise an incremental reader that fetches and parses each
  stream entry once; claims of many deliveries in one `SELECT … FOR UPDATE SKIP LOCKED`
  joined to endpoints and messages plus one `UPDATE … RETURNING`, made once a quarter of
  the slots are free; attempts recorded together in one transaction; keep-alive
  connections per receiver host (so the URL policy's pinning still holds); the company's
  endpoints read once per consumed batch. Session 3, from py-spy during the burst:
  httpcore's import of sniffio failed on every request and searched sys.path (7 % of its
  CPU; sniffio is now a dependency); the recorder's `session.get` of each delivery and
  endpoint went back to the database (the identity map had let go of the rows it loaded);
  every answer was closed unread, so no connection was ever reused; then, reused, the one
  32-connection httpcore pool polled each of its sockets on every request (a third of the
  CPU). Now: the consumer builds a read's messages and deliveries in three statements
  (a `finish` hook of the consumer), the claim reads plain columns with a query built once,
  attempts are recorded with Core statements (one executemany UPDATE, one INSERT), each
  answer is read (up to 64 KiB), and requests go through httpcore directly, in per-host
  pools of one connection borrowed per attempt (half the CPU of httpx's client), with one
  shared TLS context; the recorder wakes the worker only when a finished delivery has a
  pending successor. A webhook in the burst costs about 2 ms of notify CPU, down from 5.
- **Consumers** (shared/consumer.py, all services) apply the entries of one read in one
  transaction (one commit, one XACK), falling back to one by one when any fails; the
  processed event ids are written in one statement; redis-py parses replies with hiredis.
  Session 4: each handler looked up its row on its own (review an application's case and
  its company, intake its application: a query each, intake's autoflushing the previous
  event's writes), so a read of n events made n round trips before writing. A `prepare`
  hook now reads a whole read's rows in one query per table; at 100 applications/s this
  took the time to open a case from p99 2.0 s to 0.2 s and the webhook p99 from 1.0 s to
  0.26 s. The processed-event check and notify's claim, lease and record statements are
  built once on the tables (no per-call construction, no ORM execution path).
- **Pauses.** A full garbage collection walked the ~160,000 objects each service holds
  from its start (modules, models, schemas, migrations): about 75 ms with the GIL held,
  the tail of every latency figure (queue p99 117 ms at 100,000 cases with a p50 of 21).
  Services now `gc.freeze()` them once booted: queue p99 31 ms, webhook p99 at 100/s
  0.15 s. Engines no longer ping each connection they hand out (`pool_pre_ping`, a round
  trip per transaction); only a connection idle for 5 s is pinged.
- **Review** opens a case in about a dozen statements, several cases per transaction (the
  consumer's batch), without a flush per case (the lookup of an application's case
  autoflushed each one); the company record is cached for a minute (credentials never
  are), the working-day calendar is memoised, issuing a priority list
  claims all its cases' versions in one statement and reads each point of contact once
  (it read the same official from the directory once per case), and the deadline ticker
  reads the open requests and recorded breaches of all overdue cases in a few queries
  (it made one or two per overdue case, every minute). Models' list and dict fields
  default through plain functions: pydantic reads a default factory's signature on each
  call, and `list`'s or `dict`'s is parsed from text (180 µs each; a facts row took 313 µs
  to build, now 141).
- **Queue listing** at a million cases: the queue's order is served by an index
  (`ix_cases_order`, and `ix_cases_queue` under a state filter), and `total` comes from
  `case_counts`, a table of counts per state, tier and side that review keeps exact in
  each transaction that changes a case (counting a million rows took 75-140 ms alone).
  Offset pages cost in proportion to the offset.
- **Search** at a million cases: each side's search text is a column of `cases`, written
  when the case opens, with a trigram GIN index (`pg_trgm`) that serves `LIKE '%term%'`
  for any part of a field; a search's `total` is counted up to 10,000.
- **Metrics summary** loaded every case and every state-changing audit entry into Python
  on each request (127 s and 1.2 GB at a million cases). Now the figures are kept as the
  cases move: one `case_facts` row per case and day/month count tables with histograms of
  working days, updated in the casework transaction, so a summary is three primary-key
  range queries and exact percentiles from the histograms (docs/metrics.md, "How the
  figures are kept"; `python -m bench.metrics_summary` drives it with many requests).
  The EU's `backlog.stopping_before_decision` is the sum of `case_counts` rows (keyed also
  by whether production stops before the expected decision), not a count over `cases`
  (966 ms at p99 at a million cases while it was one).
- **Planner statistics** (session 5). Draining 10,000 events, one notify cost PostgreSQL
  0.6 cores, three times as much per webhook as in the burst. Sampling `pg_stat_activity`
  every 5 ms showed why: its claim query was active a third of the time. EXPLAIN ANALYZE
  showed the planner expecting 1 row where 8,500 deliveries were pending (the tables had
  never been analyzed: autovacuum is off on this server, and elsewhere runs once a minute
  at best). So it joined every pending delivery with its endpoint and message and sorted
  them all, spilling to disk (60-100 ms a claim, to send 32). The check for a waiting
  successor also read every pending row. Now notify analyzes its deliveries table when it
  changed by more than 500 rows plus 10 % (`shared/db.py: upkeep_tables`, every 5 s). The
  claim turns sorting off for its transaction, so it walks the due index in order
  whatever the statistics say. It also holds back in SQL: the backlog's applications and
  earliest times are bound as two arrays, where joining them as an unnested table had cost
  10-40 ms. One notify now drains 421 webhooks/s, where it drained 267, and costs
  PostgreSQL 0.2 cores.
- **Intake at half its peak** (session 6) got slower the longer intake ran: three 20 s
  runs at 458/s in a row gave a p99 of 46, 89 and 156 ms. At a fixed 420/s, PostgreSQL's
  CPU per application grew from 0.68 to 1.23 ms within 80 s. Sampling `pg_stat_activity`
  every 5 ms showed the outbox relay's look for unpublished events active 30 % of the
  time. Every published event leaves its old version behind, dead, and with autovacuum
  off (and stale statistics) the planner answered the look with a bitmap scan over every
  dead version and a sort: 11.6 ms after 35,000 events, fifty looks a second. With
  sorting off and `ORDER BY seq` the planner walked the primary key through every
  published event instead (10 ms). Now the look orders by `(published_at, seq)`, the
  order of its index, with sorting off: it reads 5 pages (0.06 ms), PostgreSQL's CPU per
  application stays at 0.46-0.52 ms, and intake's p99 at 420/s at 8-10 ms run after run
  (13 → 56 ms before). Every service also vacuums and analyzes its outbox (and notify its
  deliveries) when autovacuum would, checked every 5 s (`shared/db.py: upkeep_tables`).
- **Intake's request path** (session 6). FastAPI's generic handler (dependency solving,
  `json.loads`, then validation of the parsed body) was a fifth of intake's CPU per
  application, with a second thread hop for the credential. `POST /v1/applications` now
  reads its credential, Idempotency-Key and body itself, validating the body in one pass
  with pydantic-core, and checks the credential and writes in one hop: 1.72-1.78 ms of
  intake CPU per application at 300/s became 1.35-1.58 ms (three alternating runs). Its
  answers and its OpenAPI document are those of the generic handler, except that an
  invalid request is now refused only after its credential was checked.
- **The host's speed changes.** Identical code gave a half-peak p99 from 9 to 71 ms in
  20 s runs minutes apart, and intake's CPU per application varied by a third. So the
  half-peak step is three runs, judged on the median run, each with a CPU probe (a fixed
  piece of pure Python, timed just before the run). Earlier notes: intake's own request
  histogram shows the same tail as the client, so the requests wait inside the service
  (event loop, threads, database), not in the network or the load generator. One trial
  of intake with two uvicorn workers showed no gain: at that rate intake, PostgreSQL and
  the load generator already use about 1.5 of the machine's two cores.
- **Two replicas** share the work through the consumer groups and the delivery leases.
  The scaling step used to leave intake running while review's replicas drained the
  backlog, so intake's projection of their events took the CPU a second replica needed;
  intake is now stopped once the backlog is in the stream, and each row says how many
  cores the replicas and the servers used (2.0 is the whole machine).
"""


def _run(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, check=False).stdout
    except OSError:
        return ""


def machine(servers: Servers) -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    commit = _run(["git", "rev-parse", "--short", "HEAD"]).strip() or "unknown"
    if _run(["git", "status", "--porcelain", "--untracked-files=no"]).strip():
        commit += " (with uncommitted changes)"
    versions = servers.versions()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": versions["postgresql"],
        "redis": versions["redis"],
        "commit": commit,
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def targets(results: Results) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for each target of the issue that this run measured."""
    out: list[tuple[str, str, str]] = []
    rows = results.rows
    intake = [r for r in rows.get("intake", []) if r["system"] == "intake"]
    base = [r for r in rows.get("intake", []) if r["system"].startswith("bare")]
    if intake and base:
        peak, floor = max(r["per_second"] for r in intake), max(r["per_second"] for r in base)
        ratio = peak / floor if floor else 0
        out.append(
            (
                "intake ≥ 60 % of the bare-FastAPI baseline's throughput",
                f"{peak:,.0f}/s vs {floor:,.0f}/s = {ratio:.0%}",
                "met" if ratio >= 0.6 else "missed",
            )
        )
    limits = rows.get("rate_limit", [])
    if limits:
        shared, alone = (
            sorted(r["per_second"] for r in limits if r["scope"] == scope)
            for scope in ("shared", "process")
        )
        if shared and alone:
            ratio = shared[len(shared) // 2] / alone[len(alone) // 2]
            out.append(
                (
                    "intake with the rate limit counted in Redis ≥ 90 % of counting per process",
                    f"{shared[len(shared) // 2]:,.0f}/s vs {alone[len(alone) // 2]:,.0f}/s ="
                    f" {ratio:.0%} (medians of {len(shared)} alternating runs)",
                    "met" if ratio >= 0.9 else "missed",
                )
            )
    halves = rows.get("intake_half", [])
    if halves:
        # The median run (of an even number, the slower middle one): the host's speed changes
        # from one run to the next (see the table's CPU probe). A run with no answer at all
        # counts as the slowest.
        p99s = sorted(r["p99_ms"] if r["p99_ms"] is not None else float("inf") for r in halves)
        middle = p99s[len(p99s) // 2]
        each = ", ".join(_fmt(p) for p in p99s)
        out.append(
            (
                "intake p99 < 50 ms at half its peak rate",
                f"p99 {_fmt(middle)} ms at {halves[0]['rate']:,.0f}/s: the median of"
                f" {len(halves)} runs ({each} ms)",
                "met" if middle < 50 else "missed",
            )
        )
    cpu = {c["rate"]: c for c in rows.get("e2e_cpu", [])}
    for r in rows.get("e2e", []):
        if r["path"].endswith("webhook verified") and r["rate"] == 100:
            measured = f"p99 {_fmt(r['p99_ms'])} ms"
            if r["rate"] in cpu:
                cost = cpu[r["rate"]]["total_ms"]
                cores = os.cpu_count() or 1
                measured += (
                    f"; the journey costs {cost:,.1f} ms of CPU per application, so "
                    f"{cores} cores carry at most {1000 * cores / cost:,.0f}/s"
                )
            out.append(
                (
                    f"submit → webhook p99 < 250 ms at {r['rate']:.0f}/s",
                    measured,
                    "met" if r["p99_ms"] is not None and r["p99_ms"] < 250 else "missed",
                )
            )
    for r in rows.get("burst", []):
        replicas = r.get("notify_replicas", 1)
        out.append(
            (
                f"priority list of {r['cases']:,}: all webhooks within 10 s"
                + ("" if replicas == 1 else f" ({replicas} notify replicas)"),
                f"{r['all_webhooks_s']:.1f} s",
                "met" if r["all_webhooks_s"] <= 10 else "missed",
            )
        )
    scale = rows.get("scale", [])
    if scale:
        biggest = max(r["cases"] for r in scale)
        for r in scale:
            if r["cases"] != biggest:
                continue
            p99 = r["p99_ms"]
            out.append(
                (
                    f"{r['query']} p99 < 100 ms at {biggest:,} cases",
                    f"p99 {_fmt(p99)} ms" if p99 is not None else "no answer in time",
                    "met" if p99 is not None and p99 < 100 else "missed",
                )
            )
        at_size = [r for r in rows.get("rss", []) if r["scenario"].startswith(f"{biggest:,} cases")]
        if at_size:
            worst = max(at_size, key=lambda r: r["rss_mb"])
            plain = max(
                (r for r in at_size if "metrics" not in r["scenario"]),
                key=lambda r: r["rss_mb"],
                default=worst,
            )
            measured = f"largest {worst['service']} {worst['rss_mb']:.0f} MB ({worst['scenario']})"
            if plain is not worst:
                measured += f"; {plain['service']} {plain['rss_mb']:.0f} MB before it"
            out.append(
                (
                    f"each service < 250 MB RSS at {biggest:,} cases",
                    measured,
                    "met" if worst["rss_mb"] < 250 else "missed",
                )
            )
    reps = rows.get("replicas", [])
    for service in ("review", "notify"):
        one = [r["per_second"] for r in reps if r["service"] == service and r["replicas"] == 1]
        two = [r["per_second"] for r in reps if r["service"] == service and r["replicas"] == 2]
        if one and two:
            ratio = two[0] / one[0] if one[0] else 0
            out.append(
                (
                    f"2 replicas of {service} ≥ 1.6x one",
                    f"{one[0]:,.0f}/s → {two[0]:,.0f}/s = {ratio:.2f}x",
                    "met" if ratio >= 1.6 else f"missed ({os.cpu_count()} cores)",
                )
            )
    pair = {r["kind"]: r for r in rows.get("consumers", [])}
    if set(pair) == {"old", "new"}:
        old, new = pair["old"]["events_per_s"], pair["new"]["events_per_s"]
        ratio = new / old if old else 0
        out.append(
            (
                "consumer on FastStream within 10 % of the hand-written loop (events/s)",
                f"{new:,.0f}/s vs {old:,.0f}/s = {ratio:.2f}x (medians of"
                f" {pair['new']['runs']} alternating runs)",
                "met" if ratio >= 0.9 else "missed",
            )
        )
    return out


def _idle_note(load: str) -> str:
    one_minute = float(load.split()[0])
    if one_minute < 0.5:
        return "The machine was otherwise idle when the run started (load average below 0.5)."
    return (
        f"The machine was **not** otherwise idle: its load average was {one_minute:.2f} when the "
        "run started (other work shared the two cores), so the figures are lower and noisier "
        "than a quiet machine would give."
    )


def render(info: dict[str, str], plan: Plan, results: Results, command: str) -> str:
    rows = results.rows
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{command}` on {info['date']}; every figure below comes from that one run.",
        "Repeat with `make bench` (full) or `python -m bench --quick` (a short run to try it).",
        "",
        "## Machine",
        "",
        *_table(
            ["", ""],
            [
                ["CPU", info["cpu"]],
                ["cores (nproc)", info["cores"]],
                ["memory", info["memory"]],
                ["OS", info["os"]],
                ["Python", info["python"]],
                ["PostgreSQL", info["postgresql"]],
                ["Redis", info["redis"]],
                ["git commit", info["commit"]],
                ["load average before the run (1, 5, 15 min)", info["load_before"]],
                ["run", "quick" if plan.quick else "full"],
                [
                    "step sizes",
                    f"intake {plan.seconds:g} s per concurrency, {plan.half_runs} runs of"
                    f" {plan.half_seconds:g} s at half its peak; end to end"
                    f" {plan.e2e_seconds:g} s per rate; burst"
                    f" {plan.burst:,} cases; replicas {plan.replica_events:,} events;"
                    f" consumers {plan.consumer_events:,} events, {plan.consumer_runs} runs each",
                ],
            ],
        ),
        "PostgreSQL, Redis, the services, the load generator and the webhook receiver all share",
        "these cores, so every figure includes the cost of the others running beside it.",
        _idle_note(info["load_before"]),
        "",
        "## Targets",
        "",
        *_table(["target", "measured", "verdict"], [list(t) for t in targets(results)]),
    ]
    if rows.get("intake"):
        lines += [
            "## Intake against its baselines (closed loop)",
            "",
            *_table(
                ["system", "concurrency", "per second", "p50 ms", "p99 ms", "errors"],
                [
                    [
                        r["system"],
                        r["concurrency"],
                        r["per_second"],
                        r["p50_ms"],
                        r["p99_ms"],
                        r["errors"],
                    ]
                    for r in rows["intake"]
                ],
            ),
        ]
    if rows.get("intake_half"):
        lines += [
            "## Intake at half its peak rate (fixed rate)",
            "",
            *_table(
                ["run", "rate /s", "answered /s", "p50 ms", "p99 ms", "errors", "CPU probe ms"],
                [
                    [
                        r["run"],
                        r["rate"],
                        r["per_second"],
                        r["p50_ms"],
                        r["p99_ms"],
                        r["errors"],
                        r["cpu_probe_ms"],
                    ]
                    for r in rows["intake_half"]
                ],
            ),
            "*CPU probe*: the time this host took for a fixed piece of pure Python just before the",
            "run, with no load of the benchmark's (`bench/system.py: cpu_probe_ms`); lower is",
            "faster. The target is judged on the median run.",
            "",
        ]
    if rows.get("rate_limit"):
        lines += [
            "## The shared rate limit's round trip (closed loop, concurrency 16)",
            "",
            *_table(
                ["rate limit counted", "run", "per second", "p50 ms", "p99 ms", "errors"],
                [
                    [
                        "in Redis" if r["scope"] == "shared" else "per process",
                        r["run"],
                        r["per_second"],
                        r["p50_ms"],
                        r["p99_ms"],
                        r["errors"],
                    ]
                    for r in rows["rate_limit"]
                ],
            ),
            "Each request of a credential costs one pipelined INCRBY and EXPIRE in Redis, so all",
            "replicas share one count (`shared/ratelimit.py`); the runs alternate between the two.",
            "",
        ]
    if rows.get("e2e"):
        lines += [
            "## End to end (fixed rate)",
            "",
            *_table(
                ["path", "rate /s", "applications", "p50 ms", "p99 ms", "max ms"],
                [
                    [r["path"], r["rate"], r["applications"], r["p50_ms"], r["p99_ms"], r["max_ms"]]
                    for r in rows["e2e"]
                ],
            ),
        ]
    if rows.get("e2e_cpu"):
        names = [k.removesuffix("_ms") for k in rows["e2e_cpu"][0] if k.endswith("_ms")]
        lines += [
            "",
            "CPU time per application over the whole journey (from the first submission to the",
            "last webhook; PostgreSQL and Redis summed over their processes, the load generator",
            "not counted):",
            "",
            *_table(
                ["rate /s", "applications", *[f"{n} ms" for n in names]],
                [
                    [r["rate"], r["applications"], *[r[f"{n}_ms"] for n in names]]
                    for r in rows["e2e_cpu"]
                ],
            ),
        ]
    if rows.get("burst"):
        lines += [
            "## Burst: one priority list",
            "",
            *_table(
                [
                    "notify replicas",
                    "cases",
                    "list answered s",
                    "first webhook s",
                    "all webhooks s",
                    "webhooks /s",
                    "CPU ms per case: review",
                    "notify",
                    "receiver",
                    "postgres",
                ],
                [
                    [
                        r.get("notify_replicas", 1),
                        r["cases"],
                        r["list_answer_s"],
                        r["first_webhook_s"],
                        r["all_webhooks_s"],
                        r["webhooks_per_s"],
                        r.get("review_cpu_ms"),
                        r.get("notify_cpu_ms"),
                        r.get("receiver_cpu_ms"),
                        r.get("postgres_cpu_ms"),
                    ]
                    for r in rows["burst"]
                ],
            ),
        ]
    if rows.get("scale"):
        lines += [
            "## Scale: reads with many cases",
            "",
            *_table(
                ["cases", "query", "per second", "p50 ms", "p99 ms", "errors"],
                [
                    [r["cases"], r["query"], r["per_second"], r["p50_ms"], r["p99_ms"], r["errors"]]
                    for r in rows["scale"]
                ],
            ),
        ]
    if rows.get("rss"):
        lines += [
            "## Memory (RSS)",
            "",
            *_table(
                ["when", "process", "RSS MB"],
                [[r["scenario"], r["service"], r["rss_mb"]] for r in rows["rss"]],
            ),
        ]
    if rows.get("replicas"):
        lines += [
            "## Scaling out: draining one backlog",
            "",
            *_table(
                ["service", "replicas", "events", "per second", "cores used (by process)"],
                [
                    [
                        r["service"],
                        r["replicas"],
                        r["events"],
                        r["per_second"],
                        ", ".join(
                            f"{k.removesuffix('_cores')} {v}"
                            for k, v in r.items()
                            if k.endswith("_cores")
                        ),
                    ]
                    for r in rows["replicas"]
                ],
            ),
        ]
    if rows.get("consumers"):
        old = next((r["events_per_s"] for r in rows["consumers"] if r["kind"] == "old"), 0)
        lines += [
            "## Consumers: FastStream against the hand-written loop",
            "",
            *_table(
                [
                    "consumer",
                    "runs",
                    "events a run",
                    "events /s (median)",
                    "ratio to the loop",
                    "CPU ms/event",
                    "steady CPU ms/event",
                ],
                [
                    [
                        r["consumer"],
                        r["runs"],
                        r["events"],
                        r["events_per_s"],
                        f"{r['events_per_s'] / old:.2f}x" if old else "",
                        f"{r['cpu_ms_per_event']:.3f}",
                        f"{r['steady_cpu_ms_per_event']:.3f}",
                    ]
                    for r in rows["consumers"]
                ],
            ),
            "Every run:",
            "",
            *_table(
                ["consumer", "run", "events /s", "CPU ms/event", "steady CPU ms/event"],
                [
                    [
                        r["consumer"],
                        r["run"],
                        r["events_per_s"],
                        f"{r['cpu_ms_per_event']:.3f}",
                        f"{r['steady_cpu_ms_per_event']:.3f}",
                    ]
                    for r in rows["consumer_runs"]
                ],
            ),
        ]
    if results.notes:
        lines += ["## Notes from the run", "", *[f"- {n}" for n in results.notes], ""]
    lines += ["## Findings", "", FINDINGS, "## Method", "", METHOD]
    return "\n".join(lines)
