"""Checks of gettext catalogues shared by the tests of each one (the console's, the e-mails'):
the messages `make i18n` extracts with a babel.cfg, and translations that keep placeholders."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def extracted_messages(cfg: Path) -> set[str]:
    """The message ids `pybabel extract -F cfg -k N_` finds (plural forms by their
    singular, as the catalogue keys them)."""
    with cfg.open() as mapping:
        method_map, options_map = parse_mapping_cfg(mapping)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def placeholder_problems(catalogue: Catalog) -> list[str]:
    """Translations lacking a `%(name)s` of their message or adding one, and Babel's own
    checks' findings."""
    problems = [f"{m.id!r}: {'; '.join(str(e) for e in errors)}" for m, errors in catalogue.check()]
    for message in catalogue:
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        problems += [
            f"{ids[0]!r} → {s!r}" for s in strings if s and set(PLACEHOLDER.findall(s)) != wanted
        ]
    return problems
