"""The language mechanism of shared/i18n.py: negotiation, catalogues, formats."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from shared.i18n import (
    Formats,
    Languages,
    Message,
    accepted_languages,
    match_language,
    negotiate,
    translated,
)

SUPPORTED = ("en", "zh-Hans")


def test_accept_language_is_read_most_wanted_first() -> None:
    header = "en;q=0.5, zh-CN, fr;q=0, *;q=0.1, de-DE;q=0.8"
    assert accepted_languages(header) == ["zh-CN", "de-DE", "en"]
    assert accepted_languages(None) == []
    assert accepted_languages("q=;;, ,zh;q=abc") == []


def test_chinese_tags_in_simplified_script_match_zh_hans_and_traditional_ones_do_not() -> None:
    for tag in ("zh-Hans", "zh-hans", "zh", "zh-CN", "zh-SG", "zh-Hans-HK"):
        assert match_language(tag, SUPPORTED) == "zh-Hans", tag
    for tag in ("zh-TW", "zh-HK", "zh-Hant", "ja", "fr-FR"):
        assert match_language(tag, SUPPORTED) is None, tag
    assert match_language("en-GB", SUPPORTED) == "en"


def test_the_stored_choice_wins_over_the_browser_and_english_is_the_fallback() -> None:
    assert negotiate(SUPPORTED, "zh-Hans", "en-GB,en") == "zh-Hans"
    assert negotiate(SUPPORTED, "en", "zh-CN") == "en"
    assert negotiate(SUPPORTED, None, "fr-FR, zh-CN;q=0.7, en;q=0.5") == "zh-Hans"
    assert negotiate(SUPPORTED, "fr", "de") == "en"
    assert negotiate(SUPPORTED) == "en"


def test_dates_and_numbers_are_formatted_for_the_language() -> None:
    en, zh = Formats("en"), Formats("zh-Hans")
    assert en.date("2026-03-01") == "2026-03-01"
    assert zh.date(date(2026, 3, 1)) == "2026年3月1日"
    assert zh.date("2026-03-01T23:30:00+00:00") == "2026年3月1日"
    assert en.when(datetime(2026, 3, 1, 9, 5, tzinfo=UTC)) == "2026-03-01 09:05"
    assert zh.when("2026-03-01T09:05:00Z") == "2026年3月1日 09:05"
    assert en.date(None) == "" and en.date("not a date") == "not a date"
    assert en.number(1234567.5) == "1,234,567.5"
    assert zh.number(250.0) == "250"
    assert en.percent(0.456) == "45.6%"
    assert en.percent(None) == "—"


def test_each_language_renders_from_its_catalogue_read_from_the_po_file(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "page.html").write_text(
        '<html lang="{{ lang }}">{{ _("Queue") }} {{ ngettext("%(num)s case", "%(num)s cases",'
        " n) }} {% trans name=who %}Hello {{ name }}{% endtrans %} {{ day|format_date }}"
        ' {{ "Queue"|translate }}</html>'
    )
    catalogue = Catalog(locale="zh_Hans")
    catalogue.add("Queue", "案件队列")
    catalogue.add(("%(num)s case", "%(num)s cases"), ("%(num)s 件案件",))
    catalogue.add("Hello %(name)s", "您好，%(name)s")
    folder = tmp_path / "translations" / "zh_Hans" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "pages.po").open("wb") as po:
        write_po(po, catalogue)

    languages = Languages(templates, tmp_path / "translations", "pages", SUPPORTED)
    context = {"n": 3, "who": "<Li>", "day": date(2026, 3, 1)}
    zh = languages.environments["zh-Hans"].get_template("page.html").render(context)
    en = languages.environments["en"].get_template("page.html").render(context)
    assert zh == (
        '<html lang="zh-Hans">案件队列 3 件案件 您好，&lt;Li&gt; 2026年3月1日 案件队列</html>'
    )
    assert en == '<html lang="en">Queue 3 cases Hello &lt;Li&gt; 2026-03-01 Queue</html>'
    assert languages.names == {"en": "English", "zh-Hans": "中文 (简体)"}


def test_a_message_says_its_particulars_as_the_page_says_them() -> None:
    said = Message("controlled from %(date)s", date=date(2025, 4, 4))
    assert said == "controlled from 2025-04-04", "the English has them as they are"
    chinese = {"controlled from %(date)s": "自 %(date)s 起管制"}
    formats = Formats("zh-Hans")
    assert translated(said, chinese.__getitem__) == "自 2025-04-04 起管制"
    in_chinese = translated(said, chinese.__getitem__, lambda _name, value: formats.date(value))
    assert in_chinese == "自 2025年4月4日 起管制"
