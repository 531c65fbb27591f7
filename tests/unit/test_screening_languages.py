"""The screening's reasons are said in the portal page's language (issue 21's known limit).

Intake refuses at the door goods that need no licence that day (shared/controlled_goods.py)
and a production stop date too far ahead (services/intake/domain.py), in English for the API;
each reason is a message template with its particulars, which the new-application form says
in Chinese from the portal's catalogue: forms by their names, dates in the language's format,
element codes and the list's announcements as the list writes them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from services.intake import domain
from services.intake.application_form import build, check, message
from shared.applications import Element, Form
from shared.controlled_goods import ControlledGoods
from shared.hs_codes import packaged
from shared.i18n import catalogue_path, translations_from_po
from tests.catalogues import ROOT
from tests.unit.test_controlled_goods import GOOD
from tests.unit.test_portal_apply_form import IN_SUSPENSION, valid_values

LIST = ControlledGoods.packaged()
CHINESE = translations_from_po(
    catalogue_path(ROOT / "services" / "intake" / "translations", "zh-Hans", "portal")
).gettext


def english(text: str) -> str:
    return text


@pytest.mark.parametrize(
    ("element", "form", "day", "chinese"),
    [
        (
            Element.Dy,
            Form.metal,
            date(2025, 4, 1),
            "Dy 金属自 2025年4月4日 起实施出口管制（MOFCOM/GAC Announcement No. 18 (2025)）；"
            "在此之前出口无需出口许可证",
        ),
        (
            Element.Er,
            Form.alloy,
            date(2026, 3, 1),
            "Er 合金的出口管制（MOFCOM/GAC Announcement No. 57 (2025)）暂停实施至 2026年11月10日"
            "（含当日）（MOFCOM/GAC Announcement No. 70 (2025)）；暂停期间出口无需出口许可证",
        ),
        (Element.Nd, Form.oxide, date(2026, 3, 1), "Nd 仅以下列形态实施出口管制：磁体"),
    ],
)
def test_each_reason_is_said_in_chinese_with_its_particulars(
    element: Element, form: Form, day: date, chinese: str
) -> None:
    reason = LIST.problem(element, form, day)
    assert reason is not None
    error = {"type": "value_error", "msg": reason}
    assert message(error, CHINESE, "zh-Hans") == chinese
    assert message(error, english, "en") == str(reason), "English as the API says it"


def test_the_forms_an_element_is_controlled_in_are_listed_in_the_pages_language(
    tmp_path: Path,
) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(GOOD.replace("forms: [metal]", "forms: [metal, oxide]"), encoding="utf-8")
    reason = ControlledGoods.load(path).problem(Element.Dy, Form.magnet, date(2026, 3, 1))
    assert reason == "Dy is controlled only in these forms: metal, oxide"
    error = {"type": "value_error", "msg": reason}
    assert message(error, CHINESE, "zh-Hans") == "Dy 仅以下列形态实施出口管制：金属、氧化物"


def test_a_production_stop_date_too_far_ahead_is_said_in_chinese() -> None:
    days = domain.PRODUCTION_STOP_MAX_DAYS_AHEAD
    reason = domain.production_stop_problem(date(2040, 1, 1), date(2026, 3, 1))
    assert reason == f"must be at most {days} days ahead"
    error = {"type": "value_error", "msg": reason}
    assert message(error, CHINESE, "zh-Hans") == f"距今不得超过 {days} 天"


def test_the_form_shows_each_reason_in_chinese_next_to_its_field() -> None:
    values = {
        **valid_values(),
        "goods.1.element": "Ho",
        "goods.1.form": "oxide",
        "goods.1.hs_code": "2846.90",
        "goods.1.quantity_kg": "5",
        "goods.2.element": "Nd",
        "goods.2.form": "oxide",
        "goods.2.hs_code": "2846.90",
        "goods.2.quantity_kg": "5",
    }
    form = build(LIST, packaged(), IN_SUSPENSION, "zh-Hans", CHINESE)
    checked = check(form, values, LIST, IN_SUSPENSION, CHINESE, "zh-Hans")
    assert checked.errors["goods.1.element"] == (
        "Ho 氧化物的出口管制（MOFCOM/GAC Announcement No. 57 (2025)）暂停实施至 2026年11月10日"
        "（含当日）（MOFCOM/GAC Announcement No. 70 (2025)）；暂停期间出口无需出口许可证"
    )
    assert checked.errors["goods.2.form"] == "Nd 仅以下列形态实施出口管制：磁体"
    english_form = build(LIST, packaged(), IN_SUSPENSION, "en", english)
    in_english = check(english_form, values, LIST, IN_SUSPENSION, english)
    assert in_english.errors["goods.2.form"] == "Nd is controlled only in these forms: magnet"
