"""The languages of server-rendered pages: gettext catalogues read with Babel, chosen per person.

A service's pages are written in English (the catalogue's message ids); each other language
is a gettext catalogue, `<dir>/<locale>/LC_MESSAGES/<domain>.po`, read from its `.po` file
when the service starts, so no compiled `.mo` file is kept or built. `Languages` holds one
Jinja2 environment per language, with `jinja2.ext.i18n` bound to that language's
translations and Babel's date and number formats as filters: a request renders with the
environment of its language, and no environment is ever switched between requests (sync
routes run in threads). Nothing here knows a service: review's console and the companies'
portal each pass their own catalogues and templates.
"""

from __future__ import annotations

import gettext
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import jinja2
from babel import Locale
from babel.dates import format_date, format_time
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

DEFAULT_LANGUAGE = "en"
# Every language the channel's pages and e-mails are written in, the default first.
LANGUAGES: tuple[str, ...] = (DEFAULT_LANGUAGE, "zh-Hans")
# Dates in English pages stay ISO 8601, as they always were: both sides read them alike.
# Other languages use their CLDR "medium" date (zh-Hans: 2026年3月1日).
ISO_DATE = "yyyy-MM-dd"
_ACCEPT_ITEM = re.compile(
    r"^\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q=([0-9.]+))?\s*$"
)
# Chinese written in traditional characters, when a tag names a region but no script.
_TRADITIONAL_REGIONS = frozenset({"TW", "HK", "MO"})


def N_(message: str) -> str:
    """Mark a message for extraction where it is defined; it is translated where shown."""
    return message


class Message(str):
    """An English text that remembers the message template and the parameters it was made
    of ("too many failed sign-ins; try again in %(n)s s", n=12), so that a page in another
    language says it in that language, particulars included (`translated`). It is the
    English text wherever a plain string is expected: APIs, logs, the command line."""

    template: str
    params: Mapping[str, object]

    def __new__(cls, template: str, **params: object) -> Message:
        if isinstance(template, Message) and not params:
            return template
        message = super().__new__(cls, template % params if params else template)
        message.template, message.params = str(template), params
        return message


# How a page says one parameter of a Message (its name, its value): a date in the page's
# format, a code by its name in the page's language.
Particular = Callable[[str, object], object]


def translated(
    text: str, gettext: Callable[[str], str], particular: Particular | None = None
) -> str:
    """`text` in the language of `gettext`: a Message by its template's translation, with
    its parameters (each as `particular(name, value)` says it, when given: the English
    text has them as they are); any other text as it is."""
    if not isinstance(text, Message):
        return text
    wording = gettext(text.template)
    if not text.params:
        return wording
    if particular is None:
        return wording % text.params
    return wording % {name: particular(name, value) for name, value in text.params.items()}


def _translate(text: str, gettext: Callable[[str], str]) -> str:
    """The `translate` filter: a Message by its template (particulars kept), else the text's
    own translation."""
    return translated(text, gettext) if isinstance(text, Message) else gettext(text)


def babel_locale(tag: str) -> str:
    """The gettext/Babel identifier of a BCP 47 tag: `zh-Hans` → `zh_Hans`."""
    return tag.replace("-", "_")


def _subtags(tag: str) -> tuple[str, str | None]:
    """A tag's language and script (inferred for Chinese from its region)."""
    parts = tag.split("-")
    language = parts[0].lower()
    script = next((p.title() for p in parts[1:] if len(p) == 4 and p.isalpha()), None)
    if script is None and language == "zh":
        regions = {p.upper() for p in parts[1:] if len(p) == 2}
        script = "Hant" if regions & _TRADITIONAL_REGIONS else "Hans"
    return language, script


def match_language(tag: str, supported: Sequence[str]) -> str | None:
    """The supported language a tag asks for: the same tag, or the same language and script
    (`zh-CN`, `zh`, `zh-Hans-SG` → `zh-Hans`; `zh-TW` is not `zh-Hans`)."""
    for candidate in supported:
        if candidate.lower() == tag.lower():
            return candidate
    language, script = _subtags(tag)
    for candidate in supported:
        their_language, their_script = _subtags(candidate)
        if their_language == language and (their_script is None or their_script == script):
            return candidate
    return None


def accepted_languages(header: str | None) -> list[str]:
    """The tags of an `Accept-Language` header, most wanted first (q=0 and `*` dropped)."""
    weighted: list[tuple[float, int, str]] = []
    for index, item in enumerate((header or "").split(",")):
        found = _ACCEPT_ITEM.match(item)
        if not found or found.group(1) == "*":
            continue
        try:
            q = float(found.group(2)) if found.group(2) else 1.0
        except ValueError:
            continue
        if q > 0:
            weighted.append((-q, index, found.group(1)))
    return [tag for _q, _i, tag in sorted(weighted)]


def negotiate(
    supported: Sequence[str], preference: str | None = None, accept_language: str | None = None
) -> str:
    """The language to answer in: the stored preference, else the browser's first language
    that is supported, else the first supported language (the default)."""
    if preference is not None and (chosen := match_language(preference, supported)):
        return chosen
    for tag in accepted_languages(accept_language):
        if chosen := match_language(tag, supported):
            return chosen
    return supported[0]


def read_catalogue(path: Path) -> Catalog:
    with path.open("rb") as po:
        return read_po(po)


def translations_from_po(path: Path) -> Translations:
    """A `.po` catalogue as gettext translations, compiled in memory (fuzzy entries left out)."""
    compiled = io.BytesIO()
    write_mo(compiled, read_catalogue(path), use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled)


def catalogue_path(directory: Path, tag: str, domain: str) -> Path:
    return directory / babel_locale(tag) / "LC_MESSAGES" / f"{domain}.po"


def _as_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


@dataclass(frozen=True)
class Formats:
    """Babel's formats of dates and numbers for one language, as Jinja2 filters."""

    tag: str

    @property
    def locale(self) -> Locale:
        return Locale.parse(babel_locale(self.tag))

    def date(self, value: object) -> str:
        """A date (or the date of an ISO timestamp); anything unreadable is shown as it is."""
        moment = _as_datetime(value)
        if moment is None:
            return "" if value is None else str(value)
        pattern = ISO_DATE if self.tag == DEFAULT_LANGUAGE else "medium"
        return format_date(moment.date(), pattern, locale=self.locale)

    def when(self, value: object) -> str:
        """A timestamp to the minute, in UTC."""
        moment = _as_datetime(value)
        if moment is None:
            return "" if value is None else str(value)
        moment = moment.astimezone(UTC)
        return f"{self.date(moment)} {format_time(moment, 'HH:mm', tzinfo=UTC, locale=self.locale)}"

    def number(self, value: object, digits: int = 3) -> str:
        """A number with the language's grouping and decimal signs, up to `digits` decimals."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "" if value is None else str(value)
        return format_decimal(value, f"#,##0.{'#' * digits}", locale=self.locale)

    def percent(self, value: object, digits: int = 1) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "—"
        return format_percent(value, f"#,##0.{'0' * digits}%", locale=self.locale)

    def filters(self) -> dict[str, Callable[..., str]]:
        return {
            "format_date": self.date,
            "format_datetime": self.when,
            "format_number": self.number,
            "format_percent": self.percent,
        }


Filters = Callable[[str, Callable[[str], str]], Mapping[str, Callable[..., Any]]]


class Languages:
    """The languages one set of pages is offered in: one Jinja2 environment per language.

    `languages` are BCP 47 tags, the default (the message ids' language) first; each other
    one needs its catalogue. `filters(tag, gettext)` gives the filters that depend on the
    language (labels of codes, say), added to that language's environment. Besides `_` and
    `{% trans %}`, every environment has `translate` (a message known only at run time,
    never %-formatted) and Babel's `format_date`, `format_datetime`, `format_number` and
    `format_percent`.
    """

    def __init__(
        self,
        templates: Path | Sequence[Path],
        catalogues: Path,
        domain: str,
        languages: Sequence[str],
        filters: Filters | None = None,
    ) -> None:
        self.supported: tuple[str, ...] = tuple(languages)
        self.translations: dict[str, gettext.NullTranslations] = {
            tag: gettext.NullTranslations()
            if tag == self.supported[0]
            else translations_from_po(catalogue_path(catalogues, tag, domain))
            for tag in self.supported
        }
        # Each language by its own name (English, 中文 (简体)), as a switch offers them.
        self.names = {
            tag: Locale.parse(babel_locale(tag)).get_display_name() or tag for tag in self.supported
        }
        self.environments = {
            tag: self._environment(templates, tag, filters) for tag in self.supported
        }

    def _environment(
        self,
        templates: Path | Sequence[Path],
        tag: str,
        filters: Filters | None,
    ) -> jinja2.Environment:
        # Several directories: the service's own first, then those it shares (shared/templates).
        folders = [templates] if isinstance(templates, Path) else list(templates)
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(folder) for folder in folders]),
            autoescape=jinja2.select_autoescape(),
            extensions=["jinja2.ext.i18n"],
        )
        env.install_gettext_translations(self.translations[tag], newstyle=True)  # type: ignore[attr-defined]
        gettext = self.translations[tag].gettext
        env.filters.update(Formats(tag).filters(), translate=partial(_translate, gettext=gettext))
        if filters is not None:
            env.filters.update(filters(tag, gettext))
        env.globals.update(lang=tag, languages=self.supported, language_names=self.names)
        return env

    def gettext(self, tag: str) -> Callable[[str], str]:
        """The translation function of a language (English: the message itself)."""
        return self.translations[tag].gettext

    def negotiate(self, preference: str | None, accept_language: str | None) -> str:
        return negotiate(self.supported, preference, accept_language)

    def is_supported(self, tag: str) -> bool:
        return tag in self.supported


def name_in(names: object, tag: str) -> str | None:
    """A code's name in `tag`, else in the default language, from the names an event carries
    (`{"en": ..., "zh-Hans": ...}`, shared/events.py `Names`); None when there are none, so
    the caller words the code itself (events emitted before names were carried)."""
    if not isinstance(names, Mapping):
        return None
    for candidate in (tag, DEFAULT_LANGUAGE):
        name = names.get(candidate)
        if isinstance(name, str) and name.strip():
            return name
    return None


def named(tag: str) -> Callable[[object, object], str]:
    """The template filter `names|named(code)`: a code by the names its event carried, in
    the language `tag`, else in the default language; as words (`end_use_not_credible` →
    `end use not credible`) when the event carried none (one emitted before they were)."""

    def name(names: object, code: object) -> str:
        found = name_in(names, tag)
        return found if found is not None else str(code).replace("_", " ")

    return name


def missing_translations(catalogue: Catalog, message_ids: Iterable[str]) -> list[str]:
    """Message ids a catalogue lacks, leaves empty or marks fuzzy (each counts as missing)."""
    missing = []
    for message_id in message_ids:
        entry = catalogue.get(message_id)
        if entry is None or entry.fuzzy or not entry.string:
            missing.append(message_id)
            continue
        strings = [entry.string] if isinstance(entry.string, str) else list(entry.string)
        if not all(s.strip() for s in strings):
            missing.append(message_id)
    return missing
