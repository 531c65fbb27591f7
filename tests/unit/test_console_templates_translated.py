"""No console or portal template (nor a shared one) shows English outside a translation call
(issues 19 and 21).

Each template's Jinja comments, statements and expressions are taken out, and what remains
is read as HTML: any word of a text node, or of a visible attribute (title, aria-label,
placeholder, alt), that is not a code (EU, CSV, p90, docs/metrics.md) is a string that
`make i18n` cannot extract, so a page in Chinese would show it in English.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from services.review.console.pages import REVIEW
from shared.web.pages import TEMPLATES as SHARED

# The portal's templates (by path: the tests never import intake's tables beside review's).
INTAKE = REVIEW.parent / "intake"

TEMPLATES = sorted(
    path
    for folder in (REVIEW / "templates", INTAKE / "templates", SHARED)
    for path in folder.glob("*.html")
)
JINJA = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.S)
VISIBLE_ATTRIBUTES = frozenset({"title", "aria-label", "placeholder", "alt"})
# Words that are the same in every language: acronyms, units, paths, figures' names.
CODE = re.compile(r"^(?:[A-Z]{2,6}|\S*[\d_./=]\S*|kB)$")
WORD = re.compile(r"[^\W\d_][\w./=-]*")
# A string in an expression (a macro's argument, a default) worded in English: two words.
LITERAL = re.compile(r"(?P<q>[\"'])(?P<text>(?:(?!(?P=q)).)*)(?P=q)")
PHRASE = re.compile(r"[A-Za-z]{2,} [A-Za-z]{2,}")
# What comes before a message given to gettext: `_(`, `ngettext(`, ngettext's singular.
TRANSLATED = re.compile(r"(?:\b_|gettext)\(\s*(?:\"[^\"]*\",\s*|'[^']*',\s*)?$")
# Strings of an expression that are data, not shown: the dashboard's total row's key.
NOT_SHOWN = {"dashboard.html": ["All cases"]}


def untranslated(template: str) -> list[str]:
    """The words of a template's own text that no translation call holds."""
    found: list[str] = []

    class Reader(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.skipping = 0

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in ("script", "style"):
                self.skipping += 1
            for name, value in attrs:
                if name in VISIBLE_ATTRIBUTES and value:
                    self.handle_data(value)

        def handle_endtag(self, tag: str) -> None:
            if tag in ("script", "style") and self.skipping:
                self.skipping -= 1

        def handle_data(self, data: str) -> None:
            words = WORD.findall(data)
            if not self.skipping and any(not CODE.match(word) for word in words):
                found.append(" ".join(data.split()))

    reader = Reader()
    reader.feed(JINJA.sub(" ", template))
    reader.close()
    for code in JINJA.findall(template):
        for literal in LITERAL.finditer(code):
            text = literal.group("text")
            shown = PHRASE.search(text) and not text.startswith("<")  # markup is no message
            if shown and not TRANSLATED.search(code[: literal.start()]):
                found.append(text)
    return found


def test_the_check_finds_english_outside_a_translation_call() -> None:
    page = (
        '{% block title %}Monthly report{% endblock %}<p title="{{ _("Hint") }}">'
        '{{ _("Queue") }} · 12 — <a>CSV</a> p90 docs/metrics.md</p>'
        '<figure aria-label="QR code">{# a comment #}</figure><p>{{ x }} of {{ y }}</p>'
        '{{ f.field("code", "Code from your app") }}'
        '{{ ngettext("%(num)s case", "%(num)s cases", n) }}'
    )
    assert untranslated(page) == ["Monthly report", "QR code", "of", "Code from your app"]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_visible_string_of_a_template_is_in_a_translation_call(path: Path) -> None:
    assert untranslated(path.read_text(encoding="utf-8")) == NOT_SHOWN.get(path.name, [])
