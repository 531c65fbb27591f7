"""The retention bench's table (a row per figure, a column per print) and its progress lines
(pure logic)."""

from __future__ import annotations

import re

import pytest

from bench.retention import Progress, markdown


def test_the_table_has_a_column_per_print_and_a_row_per_figure() -> None:
    prints = [
        (10_000, 600.0, {"redis_used_memory": "4.1M", "intake.outbox": 512}),
        (20_000, 1_250.4, {"redis_used_memory": "4.3M", "intake.outbox": 498}),
    ]
    lines = markdown(prints).splitlines()
    assert lines[0] == "| applications | 10,000 | 20,000 |"
    assert lines[1] == "|---|---|---|"
    assert lines[2] == "| seconds | 600 | 1,250 |"
    assert lines[3] == "| redis_used_memory | 4.1M | 4.3M |"
    assert lines[4] == "| intake.outbox | 512 | 498 |"


def test_each_phase_of_a_batch_says_what_was_done_and_how_long_it_took(
    capsys: pytest.CaptureFixture[str],
) -> None:
    phase = Progress(20_000, 10_000)
    phase.done("submitted at intake")
    phase.done("admitted by the EU officer")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(
        r"\[retention\] applications 20,001-30,000: submitted at intake \(\d+ s\)", lines[0]
    )
    assert lines[1].startswith("[retention] applications 20,001-30,000: admitted by the EU")
