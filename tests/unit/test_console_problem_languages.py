"""A refusal on a console page says its particulars in the page's language (issue 19).

The domain's and the service layer's refusals are message templates with parameters
(domain/errors.py): the API sends the English text as it always did, and a page in Chinese
shows the template's translation with the same particulars, codes named by the protocol's
labels; a message without a template in the catalogue falls back to its kind's sentence.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.review.console.pages import problem_text, templates_for
from services.review.domain.errors import (
    ActionNotAllowedInState,
    CaseConflict,
    FieldError,
    InvalidActionParameters,
    InvalidShipment,
    NotPermitted,
    ProposalClosed,
    QuantityExceeded,
    QuantityExcess,
    ReviewDomainError,
)
from services.review.domain.protocol import Actor, Protocol
from services.review.problems import problem_for
from shared.i18n import N_

PROTOCOL = Protocol.load()
LANGUAGES = templates_for(PROTOCOL)


def _page(exc: ReviewDomainError, lang: str) -> str:
    _status, message, _fields = problem_text(exc)
    said: Any = LANGUAGES.environments[lang].filters["problem"](message)
    return str(said)


def _countersigned_by_its_proposer() -> NotPermitted:
    officer = Actor("CN", "officer")
    refusal = PROTOCOL.countersigner_refusal("refuse", officer, "a", Actor("CN", "officer"), "b")
    assert refusal is not None
    return NotPermitted("countersign", refusal)


CASES = [
    (
        ActionNotAllowedInState("approve", "approved"),
        "approve is not allowed in state 'approved'",
        "案件处于“已批准”状态，不可执行“批准并签发许可证”",
    ),
    (
        CaseConflict(N_("Licence number %(number)s is already in use."), number="LIC-77"),
        "Licence number LIC-77 is already in use.",
        "许可证编号 LIC-77 已被使用。",
    ),
    (
        InvalidActionParameters(
            "approve",
            [FieldError("licence.lines[1].approved_quantity_kg", "must be at least 0")],
        ),
        "invalid parameters for approve: licence.lines[1].approved_quantity_kg: must be at least 0",
        "“批准并签发许可证”的参数无效：批准数量（千克）：",
    ),
    (
        ProposalClosed("withdrawn"),
        "The proposal is withdrawn already; nothing was done.",
        "该提议已撤回；未作任何更改。",
    ),
    (
        InvalidShipment(
            [
                FieldError("lines[0].line", "names no line of this licence"),
                FieldError(
                    "shipped_on",
                    "must not be after 2026-02-02: a shipment is recorded once it left",
                ),
            ]
        ),
        "invalid shipment: lines[0].line: names no line of this licence; "
        "shipped_on: must not be after 2026-02-02: a shipment is recorded once it left",
        "发运记录无效：行：不是该许可证所列的行；"
        "发运日期：不得晚于 2026-02-02：货物发出后方可登记发运",
    ),
    (
        QuantityExceeded(
            "LIC-77",
            [
                QuantityExcess("line 1", "20.6", "20.5", line=1),
                QuantityExcess("Dy", "1250.5", "0.1"),
            ],
        ),
        "shipment exceeds licence LIC-77: line 1: asked 20.6 kg, 20.5 kg remaining; "
        "Dy: asked 1250.5 kg, 0.1 kg remaining",
        "发运数量超出许可证 LIC-77 的剩余数量：第 1 行：本次发运 20.6 千克，剩余 20.5 千克；"
        "镝 (Dy)：本次发运 1,250.5 千克，剩余 0.1 千克",
    ),
    (
        _countersigned_by_its_proposer(),
        "Only a supervisor countersigns a proposal to refuse.",
        "“拒绝”的提议只能由主管会签。",
    ),
]


@pytest.mark.parametrize(("exc", "english", "chinese"), CASES)
def test_a_refusal_says_its_particulars_in_both_languages(
    exc: ReviewDomainError, english: str, chinese: str
) -> None:
    assert problem_for(exc).detail == english, "the API's English as it always was"
    assert _page(exc, "en") == english
    assert chinese in _page(exc, "zh-Hans")


def test_a_reason_code_a_field_message_names_is_said_by_its_label() -> None:
    exc = InvalidActionParameters(
        "decline", [FieldError("detail", "is required when reason is other")]
    )
    _status, message, (line,) = problem_text(exc)
    chinese = LANGUAGES.environments["zh-Hans"].filters
    expected = "详细说明：当原因为 其他（见详细说明） 时必填"
    assert chinese["field_problem"](line, message) == expected, "the listed field"
    assert expected in _page(exc, "zh-Hans"), "and the sentence"
    english = LANGUAGES.environments["en"].filters
    assert english["field_problem"](line, message) == "detail: is required when reason is other"


def test_a_refusal_without_a_template_in_the_catalogue_is_said_by_its_kind() -> None:
    untranslated = CaseConflict("a conflict nobody worded for the catalogue")
    assert _page(untranslated, "zh-Hans") != str(untranslated)
    assert _page(untranslated, "en") == str(untranslated)
