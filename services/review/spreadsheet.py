"""CSV files that a spreadsheet opens as they are: UTF-8 with a BOM, and no cell run as a formula.

Excel reads a CSV without a byte-order mark in the machine's legacy code page, so a Chinese
exporter's name would arrive garbled; with the mark it reads UTF-8. A cell that begins with
`=`, `+`, `-` or `@` (or a tab or carriage return, which some programs skip before looking)
is read as a formula, and an applicant chooses names that end up in these files: such a cell
is prefixed with an apostrophe, which spreadsheets show as text (OWASP, "CSV injection").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

__all__ = ["BOM", "csv_document", "safe_cell"]

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """A value as the text of one cell, never read as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_document(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The whole file: the BOM, the header, then one line per row, every cell made safe."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    writer.writerows([safe_cell(v) for v in row] for row in rows)
    return out.getvalue()
