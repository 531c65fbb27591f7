"""The benchmark harness starts: its command line parses and explains itself (no timing here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_help_names_its_scenarios_and_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--help"],
        cwd=ROOT,
        # argparse wraps its help to the terminal's width: wide enough for one line.
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    for word in (
        "--quick",
        "--only",
        "--scale-max",
        "intake,baseline,ratelimit,e2e,burst,scale,replicas,consumers",
    ):
        assert word in out.stdout


def test_bench_refuses_an_unknown_scenario() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "everything"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert "unknown scenarios: everything" in out.stderr
