"""`python -m bench.metrics_summary`: GET /v1/metrics/summary at scale, with more requests.

The scale scenario of `python -m bench` reads the summary only a few times per size; this
loads cases the same way (bench/scale.py, PostgreSQL), starts review alone, and reads the
summary in a closed loop for each of several queries (groupings, periods cutting months,
CSV), then prints p50/p99 and review's RSS. `--check` also compares one answer per size
with `summary_from_audit` (the definition, computed from every case and audit entry in this
process: slow, and memory-hungry at a million cases).

    python -m bench.metrics_summary --sizes 100000,1000000 --seconds 20 [--check]
    python -m bench.metrics_summary --sizes 1000000 --prefix benchkeep_ --keep   # load once
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from bench.scale import bulk_load
from bench.scenarios import create_official
from bench.system import Deployment, Servers, run_loadgen


def queries(today: date) -> list[tuple[str, str]]:
    mid = today - timedelta(days=75)
    return [
        ("form, all time", "/v1/metrics/summary"),
        ("element, all time", "/v1/metrics/summary?group_by=element"),
        (
            "value_chain, from/to cutting months",
            f"/v1/metrics/summary?group_by=value_chain&from={mid.isoformat()}"
            f"&to={(today - timedelta(days=9)).isoformat()}",
        ),
        (
            "priority_list, from (mid-month)",
            f"/v1/metrics/summary?group_by=priority_list&from={mid.isoformat()}",
        ),
        ("licence_type, CSV", "/v1/metrics/summary?group_by=licence_type&format=csv"),
    ]


def check(dep: Deployment, url: str, token: str) -> bool:
    from fastapi.encoders import jsonable_encoder
    from sqlmodel import Session

    from services.review.domain.protocol import Protocol
    from services.review.metrics.reports import Period
    from tests.metrics_oracle import summary_from_audit

    today = date.today()
    start = today - timedelta(days=75)
    answer = httpx.get(
        url + f"/v1/metrics/summary?group_by=element&from={start.isoformat()}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=300,
    ).json()
    engine = dep.engine("review")
    with Session(engine) as session:
        expected = summary_from_audit(
            session, Protocol.load(), today, "element", Period(start, None)
        )
    engine.dispose()
    return bool(answer == jsonable_encoder(expected))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_summary")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--check", action="store_true")
    parser.add_argument(
        "--prefix", help="use the schemas of this prefix (cases already loaded are kept)"
    )
    parser.add_argument("--keep", action="store_true", help="leave the schemas for another run")
    args = parser.parse_args()
    servers = Servers.find()
    dep = Deployment(servers, prefix=args.prefix) if args.prefix else Deployment(servers)
    rows: list[dict[str, Any]] = []
    try:
        review = dep.service("review").wait_ready()
        token = create_official(dep, "EU", "officer")
        engine = dep.engine("review")
        with engine.connect() as conn:
            loaded = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
        for size in [int(s) for s in args.sizes.split(",")]:
            started = time.monotonic()
            if size > loaded:
                bulk_load(engine, loaded, size)
                print(f"bulk load {loaded:,} → {size:,} cases: {time.monotonic() - started:.0f} s")
                loaded = size
            print(f"{size:,} cases, review RSS before: {review.rss_mb():.0f} MB")
            for label, path in queries(date.today()):
                r = run_loadgen(
                    {
                        "mode": "closed",
                        "method": "GET",
                        "url": review.url,
                        "path": path,
                        "credentials": [token],
                        "concurrency": args.concurrency,
                        "duration": args.seconds,
                        "warmup": 1.0,
                        "timeout": 300,
                    },
                    timeout=900,
                )
                row = {
                    "cases": size,
                    "query": label,
                    "requests": r["ok"],
                    "per_second": r["per_second"],
                    "p50_ms": r["p50"],
                    "p99_ms": r["p99"],
                    "statuses": r["statuses"],
                }
                rows.append(row)
                print(json.dumps(row))
            print(f"{size:,} cases, review RSS after: {review.rss_mb():.0f} MB")
            if args.check:
                print(
                    f"{size:,} cases, equal to summary_from_audit: {check(dep, review.url, token)}"
                )
        engine.dispose()
    finally:
        if args.keep:
            dep.stop_all()
        else:
            dep.close()


if __name__ == "__main__":
    main()
