"""Every message of the companies' portal exists in every language it offers (issue 21).

The messages are extracted as `make i18n` extracts them (babel-portal.cfg: the portal's
templates and Python code, and the shared account pages'), so a string added to a portal
page without its translation fails here. (By path: the tests never import intake's tables
beside review's, and the portal's package brings intake's service.)
"""

from __future__ import annotations

import re

import pytest

from shared.i18n import catalogue_path, missing_translations, read_catalogue
from tests.catalogues import ROOT, extracted_messages

CATALOGUES = ROOT / "services" / "intake" / "translations"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
MESSAGES = extracted_messages(ROOT / "babel-portal.cfg")
OTHER_LANGUAGES = ("zh-Hans",)  # services/intake/portal/pages.py LANGUAGES, after English


def test_the_extraction_finds_the_portals_and_the_shared_messages() -> None:
    assert "Your applications" in MESSAGES, "portal templates"
    assert "Awaiting your answer" in MESSAGES, "portal code"
    assert "Forgot your password?" in MESSAGES, "shared account templates"
    assert "the two passwords differ" in MESSAGES, "shared account code"


@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_every_portal_message_is_translated(lang: str) -> None:
    catalogue = read_catalogue(catalogue_path(CATALOGUES, lang, "portal"))
    missing = missing_translations(catalogue, sorted(MESSAGES))
    assert not missing, f"{len(missing)} messages lack their {lang} translation: {missing}"


@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_every_translation_keeps_the_placeholders_of_its_message(lang: str) -> None:
    catalogue = read_catalogue(catalogue_path(CATALOGUES, lang, "portal"))
    problems = [
        f"{message.id!r} → {message.string!r}"
        for message in catalogue
        if isinstance(message.id, str)
        and message.string
        and set(PLACEHOLDER.findall(message.id)) != set(PLACEHOLDER.findall(str(message.string)))
    ]
    assert not problems
