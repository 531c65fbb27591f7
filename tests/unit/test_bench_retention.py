"""The retention bench's table: a row per figure, a column per print (pure logic)."""

from __future__ import annotations

from bench.retention import markdown


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
