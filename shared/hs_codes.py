"""The customs (HS) codes of the controlled goods as data: `hs_codes.yaml`, with descriptions.

Suggestions only: a goods line may name any HS code the API's rule takes (6 to 10 digits);
the list is checked against that rule when loaded, so it never suggests a code the API refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field

from shared.applications import Form, GoodsLine

PACKAGED = Path(__file__).with_name("hs_codes.yaml")


class _Code(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    forms: Annotated[list[Form], Field(min_length=1)]
    description: Annotated[dict[str, str], Field(min_length=1)]


class _CodesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    codes: Annotated[list[_Code], Field(min_length=1)]


@dataclass(frozen=True)
class HsCode:
    code: str  # as written in the list ("2805.30"): dots as customs documents print them
    forms: tuple[Form, ...]
    descriptions: dict[str, str]

    def description(self, lang: str) -> str:
        """In `lang`, else in the list's first language."""
        return self.descriptions.get(lang) or next(iter(self.descriptions.values()))


def load(path: Path) -> tuple[HsCode, ...]:
    """The list of a file; ValidationError when it is no such list or names a code the API
    would refuse."""
    parsed = _CodesFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    for entry in parsed.codes:
        # The API's own rule (GoodsLine's validator), on a goods line otherwise valid.
        GoodsLine.model_validate(
            {"element": "Dy", "form": "metal", "hs_code": entry.code, "quantity_kg": 1}
        )
    return tuple(HsCode(c.code, tuple(c.forms), dict(c.description)) for c in parsed.codes)


@cache
def packaged() -> tuple[HsCode, ...]:
    return load(PACKAGED)
