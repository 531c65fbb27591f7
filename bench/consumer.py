"""The stream consumer's own throughput: one consumer draining a backlog of events.

`python -m bench.consumer` puts `--events` application.submitted events on a fresh stream and
times one `StreamConsumer` (a handler that does nothing, so what is measured is the consumer:
reads, the transaction with its processed-event record, acknowledgements) draining them into
a real database: PostgreSQL when DATABASE_URL is set (in a schema of its own, dropped after),
SQLite otherwise. Redis is REDIS_URL.

`--compare PATH` alternates runs of this checkout's `shared/consumer.py` with the module at
PATH (e.g. `bench/legacy_consumer.py`, the hand-written loop it replaced), each in a fresh
process, `--runs` times each, and prints events/s and CPU per event of every run and the
median of each. `python -m bench --only consumers` runs that comparison as a bench step.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from shared.config import CommonSettings
from shared.events import CloudEvent
from shared.outbox import ProcessedEvent
from shared.redis import connect
from shared.runtime import settle_heap

HERE = Path(__file__).resolve().parent.parent / "shared" / "consumer.py"
LEGACY = Path(__file__).resolve().parent / "legacy_consumer.py"
TYPE = "application.submitted"


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"consumer_{uuid.uuid4().hex[:6]}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def database(schema: str) -> Engine:
    url = os.environ.get("DATABASE_URL")
    if not url:
        path = Path(f"/tmp/{schema}.db")
        engine = create_engine(f"sqlite:///{path}")
    else:
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        with create_engine(url).begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    ProcessedEvent.__table__.create(engine)  # type: ignore[attr-defined]
    return engine


def drop(engine: Engine, schema: str) -> None:
    if engine.dialect.name == "sqlite":
        engine.dispose()
        Path(f"/tmp/{schema}.db").unlink(missing_ok=True)
        return
    engine.dispose()
    url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    with create_engine(url).begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


async def measure(path: Path, events: int) -> dict[str, Any]:
    module = load(path)
    name = f"bench_consumer_{uuid.uuid4().hex[:8]}"
    redis = connect(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    engine = database(name)
    stream = f"{name}.intake.events"
    try:
        pipe = redis.pipeline(transaction=False)
        for n in range(events):
            event = CloudEvent(
                source="intake",
                type=TYPE,
                subject=f"app-{n}",
                data={"application_id": f"app-{n}", "reference": f"REE-{n:06d}"},
            )
            fields: dict[Any, Any] = event.to_fields()
            pipe.xadd(stream, fields)
        await pipe.execute()

        done = asyncio.Event()
        count = 0

        first = first_cpu = 0.0

        def after_commit(_event: CloudEvent) -> None:
            nonlocal count, first, first_cpu
            count += 1
            if count == 1:
                first, first_cpu = time.perf_counter(), time.process_time()
            if count == events:
                done.set()

        options: dict[str, Any] = {}
        if "broker" in inspect.signature(module.StreamConsumer).parameters:
            options["broker"] = module.make_broker(
                CommonSettings(REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
            )
        consumer = module.StreamConsumer(
            redis,
            engine,
            stream,
            "review",
            {TYPE: lambda _session, _event: None},
            after_commit=after_commit,
            **options,
        )
        stop = asyncio.Event()
        # As a service does once booted (shared/runtime.py): what the imports left is frozen,
        # so full collections do not walk it.
        settle_heap()
        wall, cpu = time.perf_counter(), time.process_time()
        task = asyncio.create_task(consumer.run(stop))
        await asyncio.wait_for(done.wait(), timeout=600)
        end = time.perf_counter()
        end_cpu = time.process_time()
        wall, cpu, start_s = end - wall, end_cpu - cpu, first - wall
        steady_cpu = end_cpu - first_cpu
        stop.set()
        await task
        if "broker" in options:
            await options["broker"].stop()
        return {
            "consumer": str(path),
            "database": engine.dialect.name,
            "events": events,
            "seconds": round(wall, 3),
            "events_per_s": round(events / wall, 1),
            "cpu_ms_per_event": round(cpu * 1000 / events, 3),
            # From start to the first commit: connecting and starting the subscribers.
            "first_commit_s": round(start_s, 3),
            # CPU per event after the first commit: the steady state, without the start.
            "steady_cpu_ms_per_event": round(steady_cpu * 1000 / max(events - 1, 1), 3),
        }
    finally:
        await redis.delete(stream, f"{stream}.dlq")
        await redis.aclose()
        drop(engine, name)


def compare(
    old: Path, runs: int, events: int, env: dict[str, str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Alternate fresh-process runs of the consumer at `old` and of today's, `runs` each;
    every run's figures by label ("old", "new"), also printed with the medians."""
    results: dict[str, list[dict[str, Any]]] = {"new": [], "old": []}
    for _ in range(runs):
        for label, path in (("old", old), ("new", HERE)):
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.consumer",
                    "--path",
                    str(path),
                    "--events",
                    str(events),
                ],
                check=True,
                capture_output=True,
                text=True,
                env=None if env is None else {**os.environ, **env},
            ).stdout
            result = json.loads(out.strip().splitlines()[-1])
            results[label].append(result)
            print(label, json.dumps(result), flush=True)
    for label, rows in results.items():
        rate = statistics.median(r["events_per_s"] for r in rows)
        cpu = statistics.median(r["cpu_ms_per_event"] for r in rows)
        steady = statistics.median(r["steady_cpu_ms_per_event"] for r in rows)
        print(
            f"{label}: median {rate:.0f} events/s, {cpu:.3f} ms CPU/event "
            f"({steady:.3f} after the first commit) over {len(rows)} runs"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--path", type=Path, default=HERE, help="the consumer module to time")
    parser.add_argument("--compare", type=Path, help="alternate runs with this consumer module")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.compare:
        compare(args.compare, args.runs, args.events)
    else:
        print(json.dumps(asyncio.run(measure(args.path, args.events))))


if __name__ == "__main__":
    main()
