"""CSV exports open in a spreadsheet as text: UTF-8 with a BOM, no cell run as a formula."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from services.review.spreadsheet import BOM, csv_document, safe_cell


@pytest.mark.parametrize(
    "value", ["=1+2", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("http://x")']
)
def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_prefixed(value: str) -> None:
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Baotou Magnet Co.", "Baotou Magnet Co."),
        ("a=b", "a=b"),
        (3, "3"),
        (None, ""),
        (True, "true"),
        (date(2026, 12, 1), "2026-12-01"),
        ("包头磁材", "包头磁材"),
    ],
)
def test_other_cells_are_written_as_they_are(value: object, shown: str) -> None:
    assert safe_cell(value) == shown


def test_the_file_starts_with_a_bom_and_reads_back_as_written() -> None:
    document = csv_document(["position", "exporter"], [[1, '包头, "Magnet"'], [2, "=cmd"]])
    assert document.startswith(BOM)
    rows = list(csv.reader(io.StringIO(document.removeprefix(BOM))))
    assert rows == [["position", "exporter"], ["1", '包头, "Magnet"'], ["2", "'=cmd"]]
