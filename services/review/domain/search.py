"""What a side may find a case by: the searched fields of its view, and the search term's rule.

A case is searched by the text of a few of its fields (API.md, `GET /v1/cases?q=`): the
channel reference, the MOFCOM application number, the exporter's name and USCC, the company's
name and the HS codes of its goods. Each side's text is read off that side's view
(visibility.view_for), so a field hidden from a side is never in the text that side searches:
China does not see the applicant company, so China cannot find a case by its name.

The text is kept per side on the case (store.Case.search_eu / search_cn) and matched as a
substring, lower-cased: one field a line, and a search term is one line, so a term never
matches across two fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from services.review.domain.visibility import view_for
from shared.text import text_problem

__all__ = ["MAX_TERM", "MIN_TERM", "SEARCHED", "InvalidSearchTerm", "search_term", "searched_text"]

Side = Literal["EU", "CN"]

# The fields searched, as paths into a case view; `*` is every item of a list.
SEARCHED: tuple[tuple[str, ...], ...] = (
    ("reference",),
    ("application", "mofcom_application_number"),
    ("application", "exporter", "name"),
    ("application", "exporter", "uscc"),
    ("applicant", "name"),
    ("application", "goods", "*", "hs_code"),
)
SEPARATOR = "\n"
MIN_TERM, MAX_TERM = 2, 100


class InvalidSearchTerm(ValueError):
    """A search term that cannot be searched for; the message says why, for the field."""


def _values(value: Any, path: tuple[str, ...]) -> Iterator[str]:
    if not path:
        if isinstance(value, str) and value:
            yield value
        return
    head, rest = path[0], path[1:]
    if head == "*":
        for item in value if isinstance(value, list) else []:
            yield from _values(item, rest)
    elif isinstance(value, Mapping) and head in value:
        yield from _values(value[head], rest)


def searched_text(
    side: Side, reference: str, company_name: str, application: Mapping[str, Any]
) -> str:
    """The text `side` finds the case by: each searched field it may see, lower-cased."""
    view = view_for(
        side,
        {"reference": reference, "applicant": {"name": company_name}, "application": application},
    )
    return SEPARATOR.join(v.lower() for path in SEARCHED for v in _values(view, path))


def search_term(raw: str) -> str:
    """The term to look for: trimmed, 2 to 100 characters on one line, lower-cased."""
    term = raw.strip()
    if not MIN_TERM <= len(term) <= MAX_TERM:
        raise InvalidSearchTerm(f"must be {MIN_TERM} to {MAX_TERM} characters")
    problem = text_problem(term, multiline=False)
    if problem is not None:
        raise InvalidSearchTerm(problem)
    return term.lower()
