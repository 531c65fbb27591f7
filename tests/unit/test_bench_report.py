"""The benchmark report's verdicts and what it keeps when written again (pure logic)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.__main__ import KEPT, kept_sections
from bench.report import render, targets
from bench.scenarios import Plan, Results


def _verdict(p99s: list[float | None]) -> tuple[str, str]:
    results = Results()
    for run, p99 in enumerate(p99s, start=1):
        results.rows.setdefault("intake_half", []).append(
            {"run": run, "rate": 400.0, "p99_ms": p99, "cpu_probe_ms": 6.0}
        )
    [(_target, measured, verdict)] = [t for t in targets(results) if "half" in t[0]]
    return measured, verdict


@pytest.mark.parametrize(
    ("p99s", "expected"),
    [
        ([30.0, 80.0, 40.0], "met"),
        ([30.0, 80.0, 60.0], "missed"),
        ([49.9], "met"),
        ([50.0], "missed"),
        # Of two runs, the slower.
        ([30.0, 60.0], "missed"),
        # A run with no answer counts as the slowest, not as the fastest.
        ([None, 30.0, 40.0], "met"),
        ([None, None, 40.0], "missed"),
    ],
)
def test_the_half_peak_target_is_judged_on_the_median_run(
    p99s: list[float | None], expected: str
) -> None:
    measured, verdict = _verdict(p99s)
    assert verdict == expected, measured


def test_every_run_is_shown_beside_the_median() -> None:
    measured, _ = _verdict([30.0, 80.0, 40.0])
    assert "p99 40.0 ms" in measured
    assert "30.0, 40.0, 80.0" in measured
    assert "3 runs" in measured


def test_the_rate_limit_round_trip_is_judged_on_the_medians_of_each_scope() -> None:
    results = Results()
    for scope, rates in (("shared", [900.0, 100.0, 950.0]), ("process", [1000.0, 990.0, 10.0])):
        for run, rate in enumerate(rates, start=1):
            results.rows.setdefault("rate_limit", []).append(
                {"scope": scope, "run": run, "per_second": rate}
            )
    [(_target, measured, verdict)] = [t for t in targets(results) if "Redis" in t[0]]
    assert measured.startswith("900/s vs 990/s = 91%") and verdict == "met"
    results.rows["rate_limit"][0]["per_second"] = 800.0
    [(_target, measured, verdict)] = [t for t in targets(results) if "Redis" in t[0]]
    assert verdict == "missed", measured


def test_the_consumer_target_compares_faststream_with_the_loop_by_their_medians() -> None:
    results = Results()
    # The order of the rows does not matter: each says which consumer it is.
    for kind, rate in (("new", 900.0), ("old", 1000.0)):
        results.rows.setdefault("consumers", []).append(
            {"kind": kind, "consumer": kind, "runs": 5, "events_per_s": rate}
        )
    [(_target, measured, verdict)] = [t for t in targets(results) if "FastStream" in t[0]]
    assert measured.startswith("900/s vs 1,000/s = 0.90x") and verdict == "met"
    results.rows["consumers"][0]["events_per_s"] = 899.0
    [(_target, measured, verdict)] = [t for t in targets(results) if "FastStream" in t[0]]
    assert verdict == "missed", measured


def test_sections_measured_apart_are_kept_when_the_report_is_written_again(
    tmp_path: Path,
) -> None:
    report = tmp_path / "benchmarks.md"
    assert kept_sections(report) == ""
    report.write_text("# Benchmarks\n\nold figures\n")
    assert kept_sections(report) == ""
    report.write_text(f"# Benchmarks\n\nold figures\n\n{KEPT}\n\n## Retention\n\n| a |\n")
    assert kept_sections(report) == f"\n{KEPT}\n\n## Retention\n\n| a |\n"


def test_the_report_shows_the_consumers_with_their_ratio_and_every_run() -> None:
    results = Results()
    for kind, rate in (("old", 1000.0), ("new", 930.0)):
        results.rows.setdefault("consumers", []).append(
            {
                "kind": kind,
                "consumer": f"the {kind} one",
                "runs": 1,
                "events": 5000,
                "events_per_s": rate,
                "cpu_ms_per_event": 0.0751,
                "steady_cpu_ms_per_event": 0.0732,
            }
        )
        results.rows.setdefault("consumer_runs", []).append(
            {
                "consumer": f"the {kind} one",
                "run": 1,
                "events_per_s": rate,
                "cpu_ms_per_event": 0.0751,
                "steady_cpu_ms_per_event": 0.0732,
            }
        )
    info = dict.fromkeys(
        ["date", "cpu", "cores", "memory", "os", "python", "postgresql", "redis", "commit"], "x"
    )
    report = render({**info, "load_before": "0.1 0.1 0.1"}, Plan.make(True, None), results, "b")
    assert "| the new one | 1 | 5,000 | 930.0 | 0.93x | 0.075 | 0.073 |" in report
    assert "| the old one | 1 | 1,000.0 | 0.075 | 0.073 |" in report
