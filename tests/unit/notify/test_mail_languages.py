"""Every message of the e-mails exists in every language the channel writes in (issue 21).

The messages are extracted as `make i18n` extracts them (services/notify/babel.cfg: the
e-mail templates and the applicant's words for statuses), so a sentence added to an e-mail
without its translation fails here.
"""

from __future__ import annotations

import pytest

from services.notify.email import CATALOGUE, CATALOGUES
from shared.i18n import LANGUAGES, catalogue_path, missing_translations, read_catalogue
from tests.catalogues import ROOT, extracted_messages, placeholder_problems

MESSAGES = extracted_messages(ROOT / "services" / "notify" / "babel.cfg")


def test_the_extraction_finds_the_templates_and_the_status_words() -> None:
    assert "Application %(ref)s approved" in MESSAGES, "a subject"
    assert "Hello," in MESSAGES, "the base template"
    assert "EU screening" in MESSAGES, "the statuses' words"


@pytest.mark.parametrize("lang", LANGUAGES[1:])
def test_every_mail_message_is_translated(lang: str) -> None:
    catalogue = read_catalogue(catalogue_path(CATALOGUES, lang, CATALOGUE))
    missing = missing_translations(catalogue, sorted(MESSAGES))
    assert not missing, f"{len(missing)} messages lack their {lang} translation: {missing}"


@pytest.mark.parametrize("lang", LANGUAGES[1:])
def test_every_mail_translation_keeps_the_placeholders_of_its_message(lang: str) -> None:
    assert not placeholder_problems(read_catalogue(catalogue_path(CATALOGUES, lang, CATALOGUE)))
