"""The approve form's quantities and the priority flags in the page's language (issue 19).

The forms are built from the protocol alone (no case is stored: casework's directory is
asked only for a joint meeting's participants, which this state does not ask for).
"""

from __future__ import annotations

from datetime import date

from services.review.console.forms import action_forms
from services.review.console.pages import CATALOGUE, REVIEW
from services.review.console.wording import ENGLISH, PRIORITY_FLAGS, Words
from services.review.domain.priority import RuleSet
from services.review.service import Casework
from shared.i18n import catalogue_path, translations_from_po


class _NoDirectory:
    """Casework's directory, never asked here."""


CASEWORK = Casework(_NoDirectory(), audit_key=b"k")  # type: ignore[arg-type]
CHINESE = Words(
    "zh-Hans",
    translations_from_po(catalogue_path(REVIEW / "translations", "zh-Hans", CATALOGUE)).gettext,
)
VIEW = {
    "state": "cn_review",
    "application": {
        "licence_type": "annual",
        "goods": [
            {"element": "Dy", "form": "magnet", "quantity_kg": 250.0},
            {"element": "Tb", "form": "oxide", "quantity_kg": 1250.5},
        ],
    },
}


def _quantities(words: Words) -> list[tuple[str, str]]:
    (approve,) = action_forms(CASEWORK, ["approve"], VIEW, date(2026, 3, 2), words)
    return [(f.label, f.value) for f in approve.fields if f.name.endswith("approved_quantity_kg")]


def test_the_approve_forms_quantities_are_written_as_the_language_writes_numbers() -> None:
    (first, first_value), (second, second_value) = _quantities(ENGLISH)
    assert "250 kg asked" in first and "250.0" not in first
    assert "1,250.5 kg asked" in second
    assert (first_value, second_value) == ("250", "1250.5"), "an input's value: a plain number"
    (first, _), (second, _) = _quantities(CHINESE)
    assert "申请 250 千克" in first and "250.0" not in first
    assert "申请 1,250.5 千克" in second and "批准数量（千克）" in second


def test_every_flag_of_the_packaged_rules_is_named_in_every_language() -> None:
    flags = {flag for rule in RuleSet.default().rules for flag in rule.flags}
    assert flags and flags <= set(PRIORITY_FLAGS), "each flag has its wording"
    for flag in flags:
        assert ENGLISH.flag(flag) == PRIORITY_FLAGS[flag]
        assert CHINESE.flag(flag) != PRIORITY_FLAGS[flag], f"{flag} has its Chinese"
    assert CHINESE.flag("military_end_use") == "军事最终用途"
