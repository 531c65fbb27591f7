"""The controlled-goods list is data with dates (shared/controlled_goods.yaml): what it says
on given days, and the files it refuses to load."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from services.intake import domain
from shared.applications import ApplicationBody, Element, Form
from shared.controlled_goods import ControlledGoods, InvalidControlledGoods
from tests.support import sample_application

LIST = ControlledGoods.packaged()


@pytest.mark.parametrize(
    ("element", "form", "day", "controlled"),
    [
        # MOFCOM/GAC No. 18: in force from 4 April 2025.
        (Element.Dy, Form.metal, date(2025, 4, 3), False),
        (Element.Dy, Form.metal, date(2025, 4, 4), True),
        (Element.Sm, Form.magnet, date(2026, 1, 1), True),
        # No. 57 (published 9 October 2025), suspended by No. 70 until 10 November 2026.
        (Element.Ho, Form.oxide, date(2025, 10, 20), False),
        (Element.Ho, Form.oxide, date(2026, 1, 15), False),
        (Element.Yb, Form.metal, date(2026, 11, 10), False),
        (Element.Yb, Form.metal, date(2026, 11, 11), True),
        # Nd and Pr only in magnets.
        (Element.Nd, Form.magnet, date(2025, 6, 1), True),
        (Element.Pr, Form.oxide, date(2025, 6, 1), False),
    ],
)
def test_the_packaged_list_on_a_given_day(
    element: Element, form: Form, day: date, controlled: bool
) -> None:
    assert (LIST.problem(element, form, day) is None) is controlled


def test_the_refusals_say_why_and_since_when() -> None:
    assert LIST.problem(Element.Dy, Form.metal, date(2025, 4, 1)) == (
        "Dy metal is controlled from 2025-04-04 (MOFCOM/GAC Announcement No. 18 (2025));"
        " before then it needs no export licence"
    )
    suspended = LIST.problem(Element.Er, Form.alloy, date(2026, 3, 1))
    assert suspended is not None
    assert "suspended until 2026-11-10 inclusive" in suspended
    assert "No. 70" in suspended
    assert LIST.problem(Element.Nd, Form.oxide, date(2026, 3, 1)) == (
        "Nd is controlled only in these forms: magnet"
    )


def test_screening_names_each_refused_line_and_the_stop_date() -> None:
    body = ApplicationBody.model_validate(
        sample_application(
            today=date(2026, 3, 1),
            goods=[
                {"element": "Dy", "form": "metal", "hs_code": "280530", "quantity_kg": 1},
                {"element": "Ho", "form": "oxide", "hs_code": "284690", "quantity_kg": 1},
                {"element": "Pr", "form": "alloy", "hs_code": "280530", "quantity_kg": 1},
            ],
            urgency={"production_stop_date": "2020-01-01"},
        )
    )
    errors = domain.screening_problems(body, date(2026, 3, 1), LIST)
    assert [e["loc"] for e in errors] == [
        ("body", "urgency", "production_stop_date"),
        ("body", "goods", 1, "element"),
        ("body", "goods", 2, "form"),
    ]


GOOD = """
controls:
  - announcement: A
    published: 2025-04-04
    in_force: 2025-04-04
    elements: [Sm, Gd, Tb, Dy, Lu, Sc, Y, Ho, Er, Tm, Eu, Yb, Nd, Pr]
    forms: [metal]
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("[metal]", "[metal, powder]"), "controls.0.forms.1"),
        (("Yb, Nd", "Yb, Xx, Nd"), "controls.0.elements.12"),
        (("Yb, Nd, Pr", "Yb"), "elements of the API with no control: Nd, Pr"),
        (("    forms: [metal]", "    forms: [metal]\n    colour: red"), "controls.0.colour"),
        (
            (
                "    forms: [metal]",
                "    forms: [metal]\n    suspensions:\n"
                "      - {by: B, from: 2026-02-01, until: 2026-01-01}",
            ),
            "`until` must not be before its `from`",
        ),
        (
            (
                "    forms: [metal]",
                "    forms: [metal]\n  - announcement: C\n"
                "    published: 2025-04-04\n    in_force: 2025-04-04\n"
                "    elements: [Dy]\n    forms: [metal]",
            ),
            "Dy metal is in two controls (A; C)",
        ),
        (("in_force: 2025-04-04", "in_force: 4 April"), "controls.0.in_force"),
        (("controls:", "controls: ["), "while parsing a flow node"),
        (("controls:", "rules:"), "controls: Field required"),
    ],
)
def test_a_list_that_does_not_hold_together_is_refused_whole(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "list.yaml"
    assert change[0] in GOOD
    path.write_text(GOOD.replace(*change), encoding="utf-8")
    with pytest.raises(InvalidControlledGoods) as refused:
        ControlledGoods.load(path)
    assert message in str(refused.value)
    assert str(path) in str(refused.value)


def test_a_list_that_holds_together_loads(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert ControlledGoods.load(path).problem(Element.Pr, Form.metal, date(2025, 5, 1)) is None
