"""The companies' portal's new-application form as pure logic: its fields, pickers, a post read.

Every field is a field of the API's body (`shared.applications.ApplicationBody`), named by its
dotted path there (`exporter.uscc`, `goods.1.hs_code`), so a pydantic error's `loc` names the
field its message goes next to. The pickers come from data: elements and forms from the
controlled-goods list as of the day (a suspended control shown as such), HS codes from
`shared/hs_codes.yaml`, licence types and end-use categories from the API's enums, countries
from the API's list. A post is read into the API's own model and screened by intake's own
`screening_problems`: the form has no rules of its own.

Goods are a repeating group: `ROWS` rows at first, one more each time "add another" is sent
(a plain submit button, so it works without JavaScript); rows left wholly empty are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from babel import Locale
from pydantic import ValidationError

from services.intake.domain import screening_problems
from shared.applications import ApplicationBody, Element, EndUseCategory, Form, LicenceType
from shared.controlled_goods import ControlledGoods
from shared.countries import ISO_3166_ALPHA_2
from shared.hs_codes import HsCode
from shared.i18n import DEFAULT_LANGUAGE, N_, Formats, Message, Particular, babel_locale, translated

Gettext = Callable[[str], str]

ROWS = 3
MAX_ROWS = next(
    m.max_length for m in ApplicationBody.model_fields["goods"].metadata if hasattr(m, "max_length")
)
GOODS_FIELDS = ("element", "form", "hs_code", "quantity_kg", "value_eur")
# The post's own fields besides the body's (and the page's CSRF and form tokens): how many
# goods rows it had, and the "add another" button's name.
ROWS_FIELD = "goods_rows"
ADD_ROW = "add_goods_row"

ELEMENT_NAMES = {
    Element.Sm: N_("samarium"),
    Element.Gd: N_("gadolinium"),
    Element.Tb: N_("terbium"),
    Element.Dy: N_("dysprosium"),
    Element.Lu: N_("lutetium"),
    Element.Sc: N_("scandium"),
    Element.Y: N_("yttrium"),
    Element.Ho: N_("holmium"),
    Element.Er: N_("erbium"),
    Element.Tm: N_("thulium"),
    Element.Eu: N_("europium"),
    Element.Yb: N_("ytterbium"),
    Element.Nd: N_("neodymium"),
    Element.Pr: N_("praseodymium"),
}
FORM_NAMES = {
    Form.metal: N_("metal"),
    Form.alloy: N_("alloy"),
    Form.oxide: N_("oxide"),
    Form.compound: N_("compound"),
    Form.magnet: N_("magnet"),
}
LICENCE_TYPES = {
    LicenceType.three_month: N_("Three-month licence"),
    LicenceType.annual: N_("Annual licence"),
    LicenceType.general: N_("General licence"),
}
END_USE_CATEGORIES = {
    EndUseCategory.automotive: N_("Automotive and electric vehicles"),
    EndUseCategory.wind_energy: N_("Wind and clean energy"),
    EndUseCategory.semiconductors: N_("Semiconductors and electronics"),
    EndUseCategory.defence: N_("Defence"),
    EndUseCategory.aerospace: N_("Aerospace"),
    EndUseCategory.medical: N_("Medical devices"),
    EndUseCategory.robotics: N_("Industrial robotics and machinery"),
    EndUseCategory.data_centres: N_("Data centres and AI chips"),
    EndUseCategory.other: N_("Other"),
}
CHOOSE = N_("Choose…")
# Between the forms a screening reason lists ("only in these forms: metal, oxide").
LIST_SEPARATOR = N_(", ")

# A pydantic error in words, by its type (its `ctx` fills the blanks); a type not here keeps
# pydantic's message. Value errors of the API's validators are translated by their message.
MESSAGES = {
    "missing": N_("This field is required."),
    "string_too_short": N_("Enter at least %(min_length)s characters."),
    "string_too_long": N_("Enter at most %(max_length)s characters."),
    "string_pattern_mismatch": N_("This is not in the expected format."),
    "float_parsing": N_("Enter a number, such as 120.5."),
    "float_type": N_("Enter a number, such as 120.5."),
    "finite_number": N_("Enter a number, such as 120.5."),
    "int_parsing": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."),
    "greater_than": N_("Enter a number greater than %(gt)s."),
    "greater_than_equal": N_("Enter a number of at least %(ge)s."),
    "less_than_equal": N_("Enter a number of at most %(le)s."),
    "enum": N_("Choose one of the options."),
    "date_from_datetime_parsing": N_("Enter a date as YYYY-MM-DD."),
    "date_parsing": N_("Enter a date as YYYY-MM-DD."),
    "too_short": N_("Fill in at least one goods line."),
    "too_long": N_("Enter at most %(max_length)s goods lines."),
}
VALUE_ERRORS = (
    N_("must be 18 characters, digits and capital letters"),
    N_("must be 6 to 10 digits (dots allowed)"),
    N_("must be an ISO 3166-1 alpha-2 country code"),
    N_("must not be in the past"),
    N_("must contain visible characters"),
)


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass
class Field:
    """One input: `name` its dotted path in the body; `label` and `hint` message ids."""

    name: str
    label: str
    kind: str  # text | textarea | number | date | select | checkbox | hs_code
    required: bool = False
    hint: str = ""
    choices: list[Choice] = field(default_factory=list)
    step: str = ""
    value: str = ""
    error: str = ""

    @property
    def id(self) -> str:
        return "f-" + self.name.replace(".", "-")

    @property
    def described_by(self) -> str:
        """The ids of its hint and its message (aria-describedby), those it has."""
        ids = (self.hint and f"{self.id}-hint", self.error and f"{self.id}-error")
        return " ".join(i for i in ids if i)


@dataclass
class Section:
    name: str  # the group's path in the body ("exporter"); the form's own fields: ""
    legend: str
    fields: list[Field]

    @property
    def id(self) -> str:
        return "f-" + self.name


@dataclass
class ApplyForm:
    """What the page shows: the sections, then the goods rows (the page's buttons follow
    them), the HS codes to suggest, and a message for the goods as a whole."""

    sections: list[Section]
    goods: list[list[Field]]
    hs_codes: list[Choice]
    goods_error: str = ""

    @property
    def fields(self) -> list[Field]:
        """The inputs outside the goods rows."""
        return [f for s in self.sections for f in s.fields]

    @property
    def inputs(self) -> list[Field]:
        """Every input, in the page's order."""
        return self.fields + [f for row in self.goods for f in row]

    def values_from(self, posted: Mapping[str, object]) -> dict[str, str]:
        """The post's values of the form's inputs (what the page shows again)."""
        return {f.name: v for f in self.inputs if isinstance(v := posted.get(f.name), str)}

    def fill(self, values: Mapping[str, str], errors: Mapping[str, str]) -> ApplyForm:
        for f in self.inputs:
            f.value = values.get(f.name, "")
            f.error = errors.get(f.name, "")
        self.goods_error = errors.get("goods", "")
        return self

    @property
    def errors(self) -> list[tuple[str, str, str]]:
        """(input id, label, message) of each message, in the page's order (the summary at
        the top links to each)."""
        found = [(f.id, f.label, f.error) for f in self.fields if f.error]
        if self.goods_error:
            found.append((self.goods[0][0].id, N_("Goods"), self.goods_error))
        return found + [(f.id, f.label, f.error) for row in self.goods for f in row if f.error]


@dataclass(frozen=True)
class Checked:
    """A post read back: the body when valid, else the message of each field by its name."""

    body: ApplicationBody | None
    errors: dict[str, str]


# --- the pickers ------------------------------------------------------------------------------


def _in_force(goods: ControlledGoods, day: date) -> Iterable[tuple[Element, list[Form], str]]:
    """Each element of the list once, in the list's order, with its forms and what the list
    says of it on `day` (its control not yet in force, or suspended)."""
    seen: set[Element] = set()
    for control in goods.controls:
        for element in control.elements:
            if element in seen:
                continue
            seen.add(element)
            note = ""
            if day < control.in_force:
                note = "from:" + control.in_force.isoformat()
            elif (suspension := control.suspension_on(day)) is not None:
                note = "suspended:" + suspension.until.isoformat()
            yield element, goods.forms_of(element), note


def element_choices(goods: ControlledGoods, day: date, gettext: Gettext) -> list[Choice]:
    every_form = {form for c in goods.controls for form in c.forms}
    choices = [Choice("", gettext(CHOOSE))]
    for element, forms, note in _in_force(goods, day):
        label = f"{element.value} — {gettext(ELEMENT_NAMES[element])}"
        if set(forms) != every_form:
            names = ", ".join(gettext(FORM_NAMES[f]) for f in forms)
            label += " · " + gettext(N_("only as %(forms)s")) % {"forms": names}
        kind, _, day_text = note.partition(":")
        if kind == "from":
            label += " · " + gettext(N_("controlled from %(date)s")) % {"date": day_text}
        elif kind == "suspended":
            label += " · " + gettext(N_("control suspended until %(date)s")) % {"date": day_text}
        choices.append(Choice(element.value, label))
    return choices


def form_choices(goods: ControlledGoods, gettext: Gettext) -> list[Choice]:
    forms = dict.fromkeys(form for c in goods.controls for form in c.forms)
    return [Choice("", gettext(CHOOSE)), *(Choice(f.value, gettext(FORM_NAMES[f])) for f in forms)]


def enum_choices(labels: Mapping[Any, str], gettext: Gettext) -> list[Choice]:
    return [
        Choice("", gettext(CHOOSE)),
        *(Choice(member.value, gettext(label)) for member, label in labels.items()),
    ]


def country_choices(lang: str, gettext: Gettext) -> list[Choice]:
    """The API's countries by their names in `lang` (Babel's), sorted by that name."""
    names = Locale.parse(babel_locale(lang)).territories
    countries = sorted(
        (Choice(code, f"{names.get(code, code)} ({code})") for code in ISO_3166_ALPHA_2),
        key=lambda c: c.label.casefold(),
    )
    return [Choice("", gettext(CHOOSE)), *countries]


def hs_code_choices(codes: Iterable[HsCode], lang: str) -> list[Choice]:
    return [Choice(c.code, c.description(lang)) for c in codes]


# --- the fields -------------------------------------------------------------------------------


def _party(name: str, legend: str, countries: list[Choice]) -> Section:
    return Section(
        name,
        legend,
        [
            Field(f"{name}.name", N_("Name"), "text", required=True),
            Field(f"{name}.country", N_("Country"), "select", required=True, choices=countries),
        ],
    )


def _goods_row(index: int, elements: list[Choice], forms: list[Choice]) -> list[Field]:
    at = f"goods.{index}"
    return [
        Field(f"{at}.element", N_("Element"), "select", choices=elements),
        Field(f"{at}.form", N_("Form"), "select", choices=forms),
        Field(
            f"{at}.hs_code",
            N_("HS code"),
            "hs_code",
            hint=N_("6 to 10 digits; dots allowed, such as 2805.30"),
        ),
        Field(f"{at}.quantity_kg", N_("Quantity (kg)"), "number", step="any"),
        Field(f"{at}.value_eur", N_("Value (EUR, optional)"), "number", step="any"),
    ]


def build(
    goods: ControlledGoods,
    hs_codes: Iterable[HsCode],
    day: date,
    lang: str,
    gettext: Gettext,
    rows: int = ROWS,
) -> ApplyForm:
    """The empty form with `rows` goods rows (`fill` puts values and messages in)."""
    countries = country_choices(lang, gettext)
    elements = element_choices(goods, day, gettext)
    forms = form_choices(goods, gettext)
    sections = [
        Section(
            "application",
            N_("The MOFCOM application"),
            [
                Field(
                    "mofcom_application_number",
                    N_("MOFCOM application number"),
                    "text",
                    required=True,
                    hint=N_("As MOFCOM gave it, such as MOFCOM-2026-004211"),
                ),
                Field(
                    "licence_type",
                    N_("Licence type"),
                    "select",
                    required=True,
                    choices=enum_choices(LICENCE_TYPES, gettext),
                ),
                Field("sme", N_("We are a small or medium-sized enterprise"), "checkbox"),
            ],
        ),
        Section(
            "exporter",
            N_("Exporter (the Chinese supplier)"),
            [
                Field("exporter.name", N_("Name"), "text", required=True),
                Field(
                    "exporter.uscc",
                    N_("Unified Social Credit Code"),
                    "text",
                    required=True,
                    hint=N_("18 characters, digits and capital letters"),
                ),
            ],
        ),
        _party("consignee", N_("Consignee"), countries),
        _party("end_user", N_("End user"), countries),
        Section(
            "end_use",
            N_("End use"),
            [
                Field(
                    "end_use.category",
                    N_("Value chain"),
                    "select",
                    required=True,
                    choices=enum_choices(END_USE_CATEGORIES, gettext),
                ),
                Field("end_use.description", N_("What the goods are for"), "textarea", True),
            ],
        ),
        Section(
            "urgency",
            N_("Urgency (optional)"),
            [
                Field("urgency.stock_days", N_("Days of stock left"), "number", step="1"),
                Field("urgency.production_stop_date", N_("Production would stop on"), "date"),
                Field("urgency.jobs_at_risk", N_("Jobs at risk"), "number", step="1"),
                Field(
                    "urgency.contract_value_eur",
                    N_("Contract value (EUR)"),
                    "number",
                    step="any",
                ),
            ],
        ),
    ]
    goods_rows = [_goods_row(i, elements, forms) for i in range(rows)]
    return ApplyForm(sections, goods_rows, hs_code_choices(hs_codes, lang))


# --- a post read back -------------------------------------------------------------------------


def rows_of(posted: Mapping[str, str], adding: bool = False) -> int:
    """How many goods rows the post had (one more if "add another" sent it), within bounds."""
    try:
        rows = int(posted.get(ROWS_FIELD, "") or ROWS)
    except ValueError:
        rows = ROWS
    return max(1, min(MAX_ROWS, rows + (1 if adding else 0)))


def body_data(form: ApplyForm, values: Mapping[str, str]) -> tuple[dict[str, Any], list[int]]:
    """The body as the API would receive it as JSON, and the row each goods line came from.

    An empty input is left out, so pydantic says a required field is missing and an optional
    one takes its default; a group (the exporter, the urgency) is sent when one of its inputs
    is filled or it has a required one; a goods row when one of its inputs is filled.
    """
    data: dict[str, Any] = {}
    for f in form.fields:
        group, _, key = f.name.rpartition(".")
        value = values.get(f.name, "").strip()
        if group and (value or f.required):
            data.setdefault(group, {})
        if value:
            (data[group] if group else data)[key] = True if f.kind == "checkbox" else value
    lines, kept = [], []
    for index, row in enumerate(form.goods):
        line = {
            f.name.rpartition(".")[2]: value
            for f in row
            if (value := values.get(f.name, "").strip())
        }
        if line:
            lines.append(line)
            kept.append(index)
    data["goods"] = lines
    return data, kept


def message(error: Mapping[str, Any], gettext: Gettext, lang: str = DEFAULT_LANGUAGE) -> str:
    """A pydantic (or screening) error's message in the page's language."""
    wording = MESSAGES.get(str(error.get("type")))
    if wording is not None:
        return gettext(wording) % {k: _number(v) for k, v in (error.get("ctx") or {}).items()}
    said = error.get("msg", "")
    if isinstance(said, Message):
        # The screening's reasons (shared/controlled_goods.py, domain.py): their templates
        # are in the catalogue, their particulars said in the page's language.
        return translated(said, gettext, _particular(said, gettext, lang))
    text = str(said).removeprefix("Value error, ")
    return gettext(text)


def _particular(said: Message, gettext: Gettext, lang: str) -> Particular:
    """How the page says a screening reason's parameters: dates in its format, forms by
    their names; element codes and announcements as the list writes them."""
    formats = Formats(lang)

    def particular(name: str, value: object) -> object:
        if isinstance(value, date):
            return formats.date(value)
        if name == "form" and isinstance(value, str) and value in Form.__members__:
            return gettext(FORM_NAMES[Form(value)])
        if name == "forms" and "form_codes" in said.params:
            codes: Any = said.params["form_codes"]
            return gettext(LIST_SEPARATOR).join(gettext(FORM_NAMES[f]) for f in codes)
        return value

    return particular


def _number(value: object) -> object:
    # A bound of a float field is a float: "greater than 0", not "greater than 0.0".
    return int(value) if isinstance(value, float) and value.is_integer() else value


def field_of(loc: Iterable[Any], kept: list[int]) -> str:
    """The form field a `loc` names: goods lines by the row they came from."""
    parts = [p for p in loc if p != "body"]
    if len(parts) >= 2 and parts[0] == "goods" and isinstance(parts[1], int):
        parts[1] = kept[parts[1]] if parts[1] < len(kept) else parts[1]
    return ".".join(str(p) for p in parts)


def check(
    form: ApplyForm,
    values: Mapping[str, str],
    goods: ControlledGoods,
    day: date,
    gettext: Gettext,
    lang: str = DEFAULT_LANGUAGE,
) -> Checked:
    """Read the values into the API's body and screen it as intake does on `day`; the
    messages in the language of `gettext`, whose tag `lang` is (for its dates)."""
    data, kept = body_data(form, values)
    try:
        body = ApplicationBody.model_validate(data)
    except ValidationError as exc:
        return Checked(None, _by_field(exc.errors(include_url=False), kept, gettext, lang))
    problems = screening_problems(body, day, goods)
    if problems:
        return Checked(None, _by_field(problems, kept, gettext, lang))
    return Checked(body, {})


def _by_field(
    errors: Iterable[Mapping[str, Any]], kept: list[int], gettext: Gettext, lang: str
) -> dict[str, str]:
    found: dict[str, str] = {}
    for error in errors:
        found.setdefault(field_of(error.get("loc", ()), kept), message(error, gettext, lang))
    return found
