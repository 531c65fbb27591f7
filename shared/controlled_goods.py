"""China's controlled-goods list as data: which element in which form is controlled on a day.

The list is `controlled_goods.yaml` (or the file `REE_CONTROLLED_GOODS_FILE` names): each
control an announcement with the elements and forms it covers, the day it comes into force
and its suspensions. It is validated whole when loaded (intake loads it at start, so a typo
stops the service rather than refusing applications), and asked per goods line of a new
application: `problem(element, form, day)` says why that line needs no licence on that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.applications import Element, Form
from shared.i18n import N_, Message

PACKAGED = Path(__file__).with_name("controlled_goods.yaml")
# Why a goods line needs no licence (`problem`), as templates for the portal's catalogue.
# `forms` is the English list of codes; `form_codes` the forms themselves, which a page
# names in its own language; `date` and `until` are dates.
ONLY_IN_FORMS = N_("%(element)s is controlled only in these forms: %(forms)s")
NOT_YET_IN_FORCE = N_(
    "%(element)s %(form)s is controlled from %(date)s (%(announcement)s); before then it "
    "needs no export licence"
)
SUSPENDED = N_(
    "the control of %(element)s %(form)s (%(announcement)s) is suspended until %(until)s "
    "inclusive (%(by)s); meanwhile it needs no export licence"
)


class InvalidControlledGoods(ValueError):
    """The list's file cannot be read as a controlled-goods list; the message says where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Suspension(_Strict):
    by: str = Field(min_length=1)
    start: date = Field(alias="from")
    until: date = Field(description="The last day of the suspension")

    @model_validator(mode="after")
    def _ordered(self) -> Suspension:
        if self.until < self.start:
            raise ValueError("a suspension's `until` must not be before its `from`")
        return self

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.until


class Control(_Strict):
    announcement: str = Field(min_length=1)
    published: date
    in_force: date
    elements: Annotated[list[Element], Field(min_length=1)]
    forms: Annotated[list[Form], Field(min_length=1)]
    suspensions: list[Suspension] = Field(default_factory=list)

    def suspension_on(self, day: date) -> Suspension | None:
        return next((s for s in self.suspensions if s.covers(day)), None)


class _ListFile(_Strict):
    controls: Annotated[list[Control], Field(min_length=1)]

    @model_validator(mode="after")
    def _one_control_per_good(self) -> _ListFile:
        seen: dict[tuple[Element, Form], str] = {}
        for control in self.controls:
            for element in control.elements:
                for form in control.forms:
                    if (element, form) in seen:
                        raise ValueError(
                            f"{element.value} {form.value} is in two controls "
                            f"({seen[element, form]}; {control.announcement})"
                        )
                    seen[element, form] = control.announcement
        missing = sorted(
            e.value for e in Element if not any(e in c.elements for c in self.controls)
        )
        if missing:
            # The API offers every Element; one the list does not know could never be applied for.
            raise ValueError("elements of the API with no control: " + ", ".join(missing))
        return self


@dataclass(frozen=True)
class ControlledGoods:
    """The validated list; build it with `load` or `packaged`."""

    controls: tuple[Control, ...]

    @classmethod
    def load(cls, path: Path) -> ControlledGoods:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            parsed = _ListFile.model_validate(data)
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidControlledGoods(f"{path}: {exc}") from exc
        except ValidationError as exc:
            where = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidControlledGoods(f"{path}: {where}") from exc
        return cls(tuple(parsed.controls))

    @classmethod
    def packaged(cls) -> ControlledGoods:
        return _packaged()

    def forms_of(self, element: Element) -> list[Form]:
        return [f for c in self.controls if element in c.elements for f in c.forms]

    def problem(self, element: Element, form: Form, day: date) -> Message | None:
        """Why `element` in `form` needs no licence on `day`, or None when it is controlled.

        The reason is a Message: the API says its English text; the portal's form says it
        in the page's language, its codes by their names and its dates in that language's
        format (the dates are kept as dates in its parameters, ISO 8601 in the English)."""
        control = next(
            (c for c in self.controls if element in c.elements and form in c.forms), None
        )
        if control is None:
            forms = self.forms_of(element)
            return Message(
                ONLY_IN_FORMS,
                element=element.value,
                forms=", ".join(f.value for f in forms),
                form_codes=tuple(forms),
            )
        if day < control.in_force:
            return Message(
                NOT_YET_IN_FORCE,
                element=element.value,
                form=form.value,
                date=control.in_force,
                announcement=control.announcement,
            )
        suspension = control.suspension_on(day)
        if suspension is not None:
            return Message(
                SUSPENDED,
                element=element.value,
                form=form.value,
                announcement=control.announcement,
                until=suspension.until,
                by=suspension.by,
            )
        return None


@cache
def _packaged() -> ControlledGoods:
    return ControlledGoods.load(PACKAGED)
