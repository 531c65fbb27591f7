"""What each side finds a case by, and which search terms are searched at all (pure logic)."""

from __future__ import annotations

from typing import Any

import pytest

from services.review.domain.search import InvalidSearchTerm, search_term, searched_text
from services.review.queue import search_anchor

APPLICATION: dict[str, Any] = {
    "mofcom_application_number": "MOFCOM-2026-004211",
    "exporter": {"name": "Baotou Magnet Co.", "uscc": "91150200MA0N1X2Y3Z"},
    "consignee": {"name": "Hidden Consignee GmbH", "country": "DE"},
    "end_use": {"category": "automotive", "description": "Hidden end use"},
    "goods": [{"hs_code": "280530", "element": "Dy"}, {"hs_code": "8505111000", "element": "Nd"}],
    "urgency": {"jobs_at_risk": 8765431},
}


def test_the_eu_searches_every_searched_field_one_a_line_lower_cased() -> None:
    text = searched_text("EU", "REC-2026-000123", "Alpha Motors AG", APPLICATION)
    assert text.split("\n") == [
        "rec-2026-000123",
        "mofcom-2026-004211",
        "baotou magnet co.",
        "91150200ma0n1x2y3z",
        "alpha motors ag",
        "280530",
        "8505111000",
    ]


def test_china_cannot_search_by_the_company_it_may_not_see() -> None:
    text = searched_text("CN", "REC-2026-000123", "Alpha Motors AG", APPLICATION)
    assert "alpha" not in text
    assert text.split("\n") == [
        "rec-2026-000123",
        "mofcom-2026-004211",
        "baotou magnet co.",
        "91150200ma0n1x2y3z",
        "280530",
        "8505111000",
    ]


@pytest.mark.parametrize("side", ["EU", "CN"])
def test_fields_that_are_not_searched_are_not_in_the_text(side: str) -> None:
    text = searched_text(side, "REC-1", "Alpha", APPLICATION)  # type: ignore[arg-type]
    for hidden in ("hidden consignee", "hidden end use", "8765431", "automotive", "dy"):
        assert hidden not in text


def test_a_case_without_goods_or_exporter_still_has_its_reference() -> None:
    assert searched_text("CN", "REC-9", "", {}) == "rec-9"


@pytest.mark.parametrize(
    ("raw", "term"),
    [("  MOFCOM-2026  ", "mofcom-2026"), ("ab", "ab"), ("x" * 100, "x" * 100), ("Ünal", "ünal")],
)
def test_a_term_is_trimmed_and_lower_cased(raw: str, term: str) -> None:
    assert search_term(raw) == term


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "2 to 100"),
        ("   ", "2 to 100"),
        (" a ", "2 to 100"),
        ("x" * 101, "2 to 100"),
        ("ab\ncd", "control character"),
        ("ab\u202ecd", "bidirectional"),
        ("\u200b\u200b", "visible"),
    ],
)
def test_a_term_too_short_too_long_or_unprintable_is_refused(raw: str, why: str) -> None:
    with pytest.raises(InvalidSearchTerm, match=why):
        search_term(raw)


@pytest.mark.parametrize(
    ("term", "anchor"),
    [
        ("mofcom-2025-0500000", "0500000"),
        ("bulk company 4321", "4321"),
        ("91150200ma0n1x2y3z", "91150200"),
        ("rec-2026-000123", "000123"),
        ("280530", "280530"),
        ("baotou magnet", "baotou magnet"),
        ("ab-12", "ab-12"),
    ],
)
def test_the_index_is_asked_for_the_longest_run_of_digits_else_the_whole_term(
    term: str, anchor: str
) -> None:
    assert search_anchor(term) == anchor
