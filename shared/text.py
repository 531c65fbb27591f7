"""What free text people type may contain before officials see it (red-team finding F9).

One rule for every free-text field of every body (names, descriptions, answers, reasons,
document names), in `shared/` so that review's notes can use the same rule. Text is refused,
never silently cleaned, so what an official reads is exactly what the applicant sent:

- no control characters (NUL and the rest of Unicode category Cc); multi-line fields may
  hold line breaks and tabs, one-line fields (names) not even those;
- no bidirectional embeddings, overrides or isolates (U+202A-U+202E, U+2066-U+2069), which
  make text read differently from what it holds ("Trojan Source");
- no lone surrogates or private-use characters (nothing a person can type or read);
- something visible: text of only whitespace and zero-width characters is refused.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator

BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
# Characters that take no space: with whitespace, text made only of them shows nothing.
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u180e\u00ad\u034f")
LINE_BREAKS = frozenset("\n\r\t")


def text_problem(value: str, *, multiline: bool) -> str | None:
    """Why `value` may not be shown to officials as typed, or None when it may."""
    allowed_controls = LINE_BREAKS if multiline else frozenset()
    for ch in value:
        if ch in BIDI_CONTROLS:
            return f"must not contain the bidirectional control U+{ord(ch):04X}"
        category = unicodedata.category(ch)
        if category == "Cc" and ch not in allowed_controls:
            return f"must not contain the control character U+{ord(ch):04X}"
        if category in ("Cs", "Co"):
            return f"must not contain U+{ord(ch):04X} (not a printable character)"
    if all(ch.isspace() or ch in ZERO_WIDTH for ch in value):
        return "must contain visible characters"
    return None


def _one_line(value: str) -> str:
    problem = text_problem(value, multiline=False)
    if problem is not None:
        raise ValueError(problem)
    return value


def _multiline(value: str) -> str:
    problem = text_problem(value, multiline=True)
    if problem is not None:
        raise ValueError(problem)
    return value


# Pydantic types for body fields: a 422 names the field and gives the reason.
OneLineText = Annotated[str, AfterValidator(_one_line)]
MultilineText = Annotated[str, AfterValidator(_multiline)]
