"""`python -m bench`: run the scenarios, print the tables, write docs/benchmarks.md."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from bench import rate_limit, scenarios
from bench.report import machine, render
from bench.system import ROOT, Servers

SCENARIOS = (
    "intake",
    "baseline",
    "ratelimit",
    "e2e",
    "burst",
    "scale",
    "replicas",
    "consumers",
)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Start the system on PostgreSQL and Redis (DATABASE_URL / REDIS_URL, else the local "
            "servers; an embedded Redis if none answers), drive load from a separate process, "
            "print the figures and write them to docs/benchmarks.md."
        ),
    )
    parser.add_argument("--quick", action="store_true", help="short steps and small sizes")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help="comma-separated scenarios: " + ",".join(SCENARIOS),
    )
    parser.add_argument(
        "--scale-max",
        type=int,
        default=None,
        help="largest number of cases for the scale scenario (default 1,000,000; quick 10,000)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="record each service with py-spy during each measured step, into DIR "
        "(collapsed stacks; pip install -e '.[bench]')",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="where to write the report ('-' to write none)",
    )
    args = parser.parse_args(argv)
    args.only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = args.only - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


# What follows this line in the report file was measured by other commands (bench/retention.py,
# a step run on its own) and is kept when `python -m bench` writes the file again.
KEPT = "<!-- measured apart from the full run: kept by python -m bench -->"


def kept_sections(path: Path) -> str:
    """The part of an existing report from the KEPT line on ("" if none)."""
    try:
        old = path.read_text()
    except FileNotFoundError:
        return ""
    at = old.find(KEPT)
    return "" if at < 0 else "\n" + old[at:]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    # A terminated run still stops its processes and drops its schemas (the `finally`s).
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(143))
    plan = scenarios.Plan.make(args.quick, args.scale_max)
    plan.profile_dir = args.profile
    servers = Servers.find()
    results = scenarios.Results()
    try:
        info = machine(servers)
        print(f"[bench] machine: {info}", flush=True)
        started = time.monotonic()
        if args.only & {"intake", "baseline"}:
            scenarios.intake_and_baselines(servers, plan, results, args.only)
        if "ratelimit" in args.only:
            rate_limit.rate_limit_round_trip(servers, plan, results)
        if args.only & {"e2e", "burst"}:
            scenarios.end_to_end_and_burst(servers, plan, results, args.only)
        if "scale" in args.only:
            scenarios.scale(servers, plan, results)
        if "replicas" in args.only:
            scenarios.replicas(servers, plan, results)
        if "consumers" in args.only:
            scenarios.consumers(servers, plan, results)
        results.note(f"the whole run took {time.monotonic() - started:.0f} s")
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        results.note(f"load average at the end of the run (1, 5, 15 min): {load}")
    finally:
        servers.close()
    report = render(info, plan, results, " ".join(["python -m bench", *argv]))
    print(report)
    if str(args.out) != "-":
        args.out.write_text(report + "\n" + kept_sections(args.out))
        print(f"[bench] written to {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
