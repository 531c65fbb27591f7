"""Every message of the console and every protocol label exists in every language (issue 19).

The messages are extracted as `make i18n` extracts them (babel.cfg: the templates, the
console's Python code, the metrics' stage names, the actions' descriptions), so a string
added to a page without its translation fails here, as does a protocol code without its
Chinese label.
"""

from __future__ import annotations

import pytest

from services.review.console.pages import CATALOGUE, REVIEW
from services.review.console.wording import ENGLISH, PARAM_LABELS, Words
from services.review.domain.protocol import Protocol
from shared.accounts.errors import InvalidInput, SignInDelayed
from shared.applications import Element, EndUseCategory, Form, LicenceType
from shared.i18n import (
    catalogue_path,
    missing_translations,
    read_catalogue,
    translations_from_po,
)
from shared.web.accounts import account_message
from tests.catalogues import ROOT, extracted_messages, placeholder_problems

PROTOCOL = Protocol.load()
OTHER_LANGUAGES = PROTOCOL.languages[1:]


MESSAGES = extracted_messages(ROOT / "babel.cfg")


def test_the_extraction_finds_the_consoles_messages_from_each_kind_of_source() -> None:
    assert "CN queue" in MESSAGES, "templates"
    assert "The form lacks the case version; reload the page." in MESSAGES, "console code"
    assert "Queue (waiting for a list)" in MESSAGES, "the metrics' stage names"
    assert PROTOCOL.actions["acknowledge"].description in MESSAGES, "the actions' descriptions"
    assert "%(num)s case" in MESSAGES, "plural forms"


def test_the_languages_offered_are_english_then_simplified_chinese() -> None:
    assert PROTOCOL.languages == ("en", "zh-Hans")


@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_every_console_message_is_translated(lang: str) -> None:
    catalogue = read_catalogue(catalogue_path(REVIEW / "translations", lang, CATALOGUE))
    missing = missing_translations(catalogue, sorted(MESSAGES))
    assert not missing, f"{len(missing)} messages lack their {lang} translation: {missing}"


@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_every_translation_keeps_the_placeholders_of_its_message(lang: str) -> None:
    """Each `%(name)s` of the message is in each of its translations, and no other one (a
    dropped one loses a fact on the page; an unknown one fails when the page is shown)."""
    catalogue = read_catalogue(catalogue_path(REVIEW / "translations", lang, CATALOGUE))
    assert not placeholder_problems(catalogue)


def test_a_message_without_a_translation_is_found_missing() -> None:
    catalogue = read_catalogue(catalogue_path(REVIEW / "translations", "zh-Hans", CATALOGUE))
    catalogue.get("CN queue").string = ""
    assert missing_translations(catalogue, ["CN queue", "A sentence no page has"]) == [
        "CN queue",
        "A sentence no page has",
    ]


def _every_label() -> list[tuple[str, str, str | None]]:
    """(kind, code, action of a reason code) for every code the console shows."""
    labels: list[tuple[str, str, str | None]] = [("state", s, None) for s in PROTOCOL.states]
    labels += [("action", a, None) for a in PROTOCOL.actions]
    labels += [
        ("reason", code, action)
        for action, codes in PROTOCOL.spec.reason_codes.items()
        for code in codes
    ]
    labels += [("licence_type", t.value, None) for t in LicenceType]
    labels += [("element", e.value, None) for e in Element]
    labels += [("form", f.value, None) for f in Form]
    labels += [("value_chain", c.value, None) for c in EndUseCategory]
    return labels


@pytest.mark.parametrize("lang", PROTOCOL.languages)
def test_every_code_the_console_shows_has_a_label_in_every_language(lang: str) -> None:
    named = PROTOCOL.spec.labels
    missing = []
    for kind, code, action in _every_label():
        if kind == "state":
            given = PROTOCOL.states[code].label
        elif kind == "action":
            given = PROTOCOL.spec.actions[code].label
        else:
            given = named.of(kind, action).get(code, {})  # type: ignore[arg-type]
        if not given.get(lang, "").strip():
            missing.append(f"{kind} {action + '.' if action else ''}{code}")
    assert not missing, f"labels without {lang}: {missing}"


def test_every_action_parameter_has_a_field_label() -> None:
    def names(params: dict) -> set[str]:  # type: ignore[type-arg]
        found = set()
        for name, spec in params.items():
            found.add(name)
            if spec.fields:
                found |= names(spec.fields)
            if spec.items and spec.items.fields:
                found |= names(spec.items.fields)
        return found

    every = set().union(*(names(dict(a.params)) for a in PROTOCOL.actions.values()))
    assert every - set(PARAM_LABELS) == set()


def test_an_account_refusal_is_worded_in_the_pages_language_with_its_particulars() -> None:
    po = catalogue_path(REVIEW / "translations", "zh-Hans", CATALOGUE)
    chinese = Words("zh-Hans", translations_from_po(po).gettext)
    delayed = str(SignInDelayed(12))
    assert account_message(delayed, chinese) == "登录失败次数过多，请于 12 秒后重试"
    differ = str(InvalidInput("the two passwords differ", field="repeat"))
    assert account_message(differ, chinese) == "两次输入的密码不一致"
    assert account_message(delayed, ENGLISH) == delayed, "English as the accounts word it"
    assert account_message("a refusal of no template", chinese) == "a refusal of no template"
