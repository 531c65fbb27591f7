"""The benchmark's verdict on intake at half its peak: the median of its runs (pure logic)."""

from __future__ import annotations

import pytest

from bench.report import targets
from bench.scenarios import Results


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
