"""The portal's new-application form as logic: its fields are the API's body, its pickers
come from data, and a post is checked by the API's own model and intake's own screening."""

from __future__ import annotations

import typing
from datetime import date
from pathlib import Path
from types import UnionType
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from services.intake import application_form as apply_form
from services.intake.application_form import ApplyForm, build, check, rows_of
from shared.applications import ApplicationBody, Element, EndUseCategory, LicenceType
from shared.controlled_goods import ControlledGoods
from shared.hs_codes import load, packaged

GOODS = ControlledGoods.packaged()
TODAY = date(2026, 12, 1)  # after every control came into force, no suspension running
IN_SUSPENSION = date(2026, 6, 1)  # Ho, Er, Tm, Eu, Yb suspended until 2026-11-10


def english(message: str) -> str:
    return message


def new_form(day: date = TODAY, rows: int = apply_form.ROWS) -> ApplyForm:
    return build(GOODS, packaged(), day, "en", english, rows)


def valid_values() -> dict[str, str]:
    return {
        "mofcom_application_number": "MOFCOM-2026-004211",
        "licence_type": "three_month",
        "exporter.name": "Baotou Magnet Co.",
        "exporter.uscc": "91150200MA0N1X2Y3Z",
        "consignee.name": "Bosch GmbH",
        "consignee.country": "DE",
        "end_user.name": "Bosch GmbH",
        "end_user.country": "DE",
        "end_use.category": "automotive",
        "end_use.description": "traction motors for EV platform X",
        "goods.0.element": "Dy",
        "goods.0.form": "metal",
        "goods.0.hs_code": "2805.30",
        "goods.0.quantity_kg": "120.5",
        "goods.0.value_eur": "51000",
        "urgency.stock_days": "12",
        "urgency.production_stop_date": "2026-12-15",
        "urgency.jobs_at_risk": "800",
    }


def _leaves(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every scalar field of a model by its dotted path; a list of models by its first item."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        path = prefix + name
        kind: Any = info.annotation
        if isinstance(kind, UnionType) or typing.get_origin(kind) is typing.Union:
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if typing.get_origin(kind) is list:
            names |= _leaves(typing.get_args(kind)[0], path + ".0.")
        elif isinstance(kind, type) and issubclass(kind, BaseModel):
            names |= _leaves(kind, path + ".")
        else:
            names.add(path)
    return names


def test_the_form_has_every_field_of_the_apis_body_and_no_other() -> None:
    form = new_form(rows=1)
    assert {f.name for f in form.inputs} == _leaves(ApplicationBody)


def test_the_element_picker_is_the_controlled_goods_list_with_what_it_says_of_each() -> None:
    elements = new_form(IN_SUSPENSION).goods[0][0].choices
    assert elements[0].value == ""  # nothing is chosen for the applicant
    assert sorted(c.value for c in elements[1:]) == sorted(e.value for e in Element)
    labels = {c.value: c.label for c in elements}
    assert labels["Dy"] == "Dy — dysprosium"
    assert labels["Nd"] == "Nd — neodymium · only as magnet"
    assert labels["Ho"] == "Ho — holmium · control suspended until 2026-11-10"
    assert new_form(date(2025, 10, 20)).goods[0][0].choices[-1].label == (
        "Yb — ytterbium · controlled from 2025-11-08"
    )
    assert {c.value: c.label for c in new_form(TODAY).goods[0][0].choices}["Ho"] == ("Ho — holmium")


def test_licence_types_value_chains_and_countries_come_from_the_apis_enums_and_list() -> None:
    fields = {f.name: f for f in new_form().inputs}
    assert [c.value for c in fields["licence_type"].choices[1:]] == [t.value for t in LicenceType]
    assert [c.value for c in fields["end_use.category"].choices[1:]] == [
        c.value for c in EndUseCategory
    ]
    countries = {c.value: c.label for c in fields["consignee.country"].choices}
    assert countries["DE"] == "Germany (DE)"
    assert len(countries) == 250  # the API's 249 and "Choose…"
    chinese = {f.name: f for f in build(GOODS, packaged(), TODAY, "zh-Hans", english).fields}
    assert {c.value: c.label for c in chinese["end_user.country"].choices}["DE"] == "德国 (DE)"


def test_hs_codes_are_suggested_from_the_data_file_in_the_pages_language() -> None:
    assert [c.value for c in new_form().hs_codes] == [
        "2805.30",
        "2846.90",
        "8505.11",
        "3824.99",
        "8486.90",
    ]
    chinese = build(GOODS, packaged(), TODAY, "zh-Hans", english)
    assert chinese.hs_codes[0].label == "稀土金属、钪及钇"


def test_an_hs_code_list_with_a_code_the_api_refuses_does_not_load(tmp_path: Path) -> None:
    bad = tmp_path / "codes.yaml"
    bad.write_text('codes:\n  - code: "2805"\n    forms: [metal]\n    description: {en: x}\n')
    with pytest.raises(ValidationError):
        load(bad)


def test_a_valid_post_is_the_apis_body() -> None:
    checked = check(new_form(), valid_values(), GOODS, TODAY, english)
    assert checked.errors == {}
    assert checked.body is not None
    assert checked.body.goods[0].hs_code == "280530"
    assert checked.body.sme is False
    with_sme = check(new_form(), {**valid_values(), "sme": "on"}, GOODS, TODAY, english)
    assert with_sme.body is not None and with_sme.body.sme is True


def test_empty_inputs_are_left_out_and_an_empty_urgency_is_none() -> None:
    values = {k: v for k, v in valid_values().items() if not k.startswith("urgency.")}
    checked = check(new_form(), {**values, "goods.0.value_eur": " "}, GOODS, TODAY, english)
    assert checked.body is not None
    assert checked.body.urgency is None
    assert checked.body.goods[0].value_eur is None


def test_each_error_is_put_next_to_its_field_with_nothing_else() -> None:
    values = {
        **valid_values(),
        "exporter.uscc": "123",
        "consignee.country": "XX",
        "urgency.stock_days": "twelve",
        "end_use.description": "",
    }
    checked = check(new_form(), values, GOODS, TODAY, english)
    assert checked.body is None
    assert checked.errors == {
        "exporter.uscc": "must be 18 characters, digits and capital letters",
        "consignee.country": "must be an ISO 3166-1 alpha-2 country code",
        "end_use.description": "This field is required.",
        "urgency.stock_days": "Enter a whole number.",
    }


def test_empty_goods_rows_are_ignored_and_a_lines_error_names_its_row() -> None:
    values = {k: v for k, v in valid_values().items() if not k.startswith("goods.")}
    values |= {"goods.2.element": "Dy", "goods.2.form": "oxide", "goods.2.hs_code": "28"}
    values |= {"goods.2.quantity_kg": "0"}
    checked = check(new_form(), values, GOODS, TODAY, english)
    assert checked.errors == {
        "goods.2.hs_code": "must be 6 to 10 digits (dots allowed)",
        "goods.2.quantity_kg": "Enter a number greater than 0.",
    }


def test_no_goods_line_at_all_is_said_of_the_goods() -> None:
    values = {k: v for k, v in valid_values().items() if not k.startswith("goods.")}
    form = new_form()
    checked = check(form, values, GOODS, TODAY, english)
    assert checked.errors == {"goods": "Fill in at least one goods line."}
    form.fill(values, checked.errors)
    assert form.errors == [("f-goods-0-element", "Goods", "Fill in at least one goods line.")]


def test_the_screening_of_the_api_refuses_a_past_stop_date_and_goods_needing_no_licence() -> None:
    values = {
        **valid_values(),
        "urgency.production_stop_date": "2020-01-01",
        "goods.1.element": "Ho",
        "goods.1.form": "oxide",
        "goods.1.hs_code": "2846.90",
        "goods.1.quantity_kg": "5",
    }
    checked = check(new_form(), values, GOODS, IN_SUSPENSION, english)
    assert checked.errors["urgency.production_stop_date"] == "must not be in the past"
    assert checked.errors["goods.1.element"].startswith("the control of Ho oxide")


def test_the_messages_are_in_the_pages_language() -> None:
    chinese = {
        "This field is required.": "此项必填。",
        "Enter at least %(min_length)s characters.": "至少 %(min_length)s 个字符。",
    }
    values = {**valid_values(), "exporter.name": ""}
    checked = check(new_form(), values, GOODS, TODAY, lambda m: chinese.get(m, m))
    assert checked.errors == {"exporter.name": "此项必填。"}
    error = {"type": "string_too_short", "ctx": {"min_length": 1}, "msg": "String should"}
    assert apply_form.message(error, lambda m: chinese.get(m, m)) == "至少 1 个字符。"


def test_a_form_filled_again_keeps_every_value_and_lists_its_errors_in_page_order() -> None:
    values = {**valid_values(), "exporter.uscc": "123", "goods.0.quantity_kg": "-1"}
    form = new_form()
    checked = check(form, values, GOODS, TODAY, english)
    form.fill(form.values_from({**values, "stranger": "x"}), checked.errors)
    assert {f.name: f.value for f in form.inputs if f.value} == values
    assert [(i, m) for i, _label, m in form.errors] == [
        ("f-exporter-uscc", "must be 18 characters, digits and capital letters"),
        ("f-goods-0-quantity_kg", "Enter a number greater than 0."),
    ]
    uscc = next(f for f in form.inputs if f.name == "exporter.uscc")
    assert (uscc.value, uscc.error) == ("123", checked.errors["exporter.uscc"])


def test_another_goods_row_is_added_within_the_apis_bounds() -> None:
    assert rows_of({}) == apply_form.ROWS
    assert rows_of({"goods_rows": "3"}, adding=True) == 4
    assert rows_of({"goods_rows": "nonsense"}) == apply_form.ROWS
    assert rows_of({"goods_rows": "100"}, adding=True) == 100
    assert rows_of({"goods_rows": "-5"}) == 1
    assert len(new_form(rows=4).goods) == 4
