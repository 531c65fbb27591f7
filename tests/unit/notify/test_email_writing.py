"""A person's e-mail is written from the webhook body alone, for every type they may choose,
as plain text and escaped HTML, with nothing an internal event carries beyond it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.notify.domain.payloads import PUBLIC_EVENT_TYPES, to_webhook_message
from services.notify.email import Writer, email_message
from tests.unit.notify.test_webhook_payloads import (
    ACKNOWLEDGED,
    APPROVED,
    INFORMATION_REQUESTED,
    LEAK_MARKERS,
    LICENCE,
    REFUSED,
    REMINDER,
    REVOKED,
    SHIPPED,
    STATE_CHANGED,
    SUBMITTED,
    event,
)

EVENTS = [
    SUBMITTED,
    STATE_CHANGED,
    INFORMATION_REQUESTED,
    REMINDER,
    APPROVED,
    REFUSED,
    LICENCE,
    REVOKED,
    SHIPPED,
]
WRITER = Writer()


def _body(internal: dict[str, Any]) -> dict[str, Any]:
    message = to_webhook_message(internal)
    assert message is not None
    parsed: dict[str, Any] = json.loads(message.encoded())
    return parsed


def test_every_type_a_person_may_choose_has_its_e_mail() -> None:
    assert {_body(e)["type"] for e in EVENTS} == PUBLIC_EVENT_TYPES


@pytest.mark.parametrize("internal", EVENTS, ids=lambda e: e["type"])
def test_an_e_mail_says_what_happened_and_carries_nothing_hidden(internal: dict[str, Any]) -> None:
    written = WRITER.write(_body(internal))
    assert "REC-2026-000123" in written.subject
    assert written.text.startswith("Hello,")
    mail = email_message(written, "channel@ree.example", "eva@company.example", "msg_1")
    raw = mail.as_string()
    for marker in LEAK_MARKERS:
        assert marker not in raw, marker
    assert mail["Message-ID"] == "<msg_1@reechannel>"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]


def test_the_subjects_and_the_words_of_each_type() -> None:
    subjects = {_body(e)["type"]: WRITER.write(_body(e)).subject for e in EVENTS}
    assert subjects == {
        "application.received": "Application REC-2026-000123 received",
        "application.status_changed": "Application REC-2026-000123: queued",
        "application.information_requested": "Application REC-2026-000123: information requested",
        "application.information_reminder": (
            "Reminder: application REC-2026-000123 awaits your answer"
        ),
        "application.approved": "Application REC-2026-000123 approved",
        "application.refused": "Application REC-2026-000123 refused",
        "licence.issued": "Licence LIC-2026-0042 issued for application REC-2026-000123",
        "licence.revoked": "Licence LIC-2026-0042 for application REC-2026-000123 revoked",
        "licence.shipment_recorded": (
            "Shipment recorded against licence LIC-2026-0042 for application REC-2026-000123"
        ),
    }
    shipped = WRITER.write(_body(SHIPPED)).text
    assert "- line 1, Dy metal: 60 kg" in shipped
    assert "- line 1, Dy metal: 40 kg" in shipped.split("What remains")[1]
    refused = WRITER.write(_body(REFUSED)).text
    assert "(reason: military end use)" in refused
    changed = WRITER.write(_body(STATE_CHANGED)).text
    assert "from EU screening to queued" in changed
    assert "Your point of contact: Anna Novak (anna.novak@ec.example)." in changed
    acknowledged = WRITER.write(_body(ACKNOWLEDGED)).text
    assert "MOFCOM accepted the file of application REC-2026-000123 on" in acknowledged
    assert "45 working days ends on" in acknowledged


def test_what_officials_wrote_is_escaped_in_the_html() -> None:
    asked = event(
        "case.information_requested",
        request={"id": "ir-2", "question": "<script>alert(1)</script> & more?", "due": None},
    )
    written = WRITER.write(_body(asked))
    assert "<script>" not in written.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more?" in written.html
    assert "<script>alert(1)</script> & more?" in written.text
    assert "Please answer by" not in written.text


def test_the_same_e_mail_in_simplified_chinese_with_its_dates_in_chinese() -> None:
    english = WRITER.write(_body(INFORMATION_REQUESTED))
    chinese = WRITER.write(_body(INFORMATION_REQUESTED), "zh-Hans")
    assert chinese.subject == "申请 REC-2026-000123：需要补充信息"
    assert chinese.text.startswith("您好：")
    assert "请于 " in chinese.text and "日 前答复" in chinese.text, "a Babel date: 2026年…月…日"
    assert '<html lang="zh-Hans">' in chinese.html
    assert english.subject == "Application REC-2026-000123: information requested"
    changed = WRITER.write(_body(STATE_CHANGED), "zh-Hans").text
    assert "“欧盟初审”变为“排队等待优先名单”" in changed


def test_a_language_the_channel_does_not_write_in_gets_english() -> None:
    assert WRITER.write(_body(APPROVED), "fr").subject == "Application REC-2026-000123 approved"


REFUSAL_NAMES = {"en": "Quantity not justified by the end use", "zh-Hans": "数量与所述最终用途不符"}
TYPE_NAMES = {"en": "Three-month licence", "zh-Hans": "三个月有效期出口许可证"}
NAMED_REFUSAL = event(
    "case.decided",
    decision="refused",
    reason="quantity_not_justified",
    reason_label=REFUSAL_NAMES,
)
NAMED_LICENCE = event(
    "licence.issued", licence={**LICENCE["data"]["licence"], "type_label": TYPE_NAMES}
)


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_a_refusal_names_its_reason_in_the_persons_language(lang: str) -> None:
    text = WRITER.write(_body(NAMED_REFUSAL), lang).text
    assert REFUSAL_NAMES[lang] in text
    assert "quantity" not in text.replace(REFUSAL_NAMES["en"], "")


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_a_licence_names_its_type_in_the_persons_language(lang: str) -> None:
    text = WRITER.write(_body(NAMED_LICENCE), lang).text
    assert TYPE_NAMES[lang] in text
    assert "three month" not in text


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_events_without_names_still_show_their_codes_in_words(lang: str) -> None:
    refused = WRITER.write(_body(REFUSED), lang).text
    assert "military end use" in refused
    licence = WRITER.write(_body(LICENCE), lang).text
    assert "three month" in licence


def test_a_name_missing_in_the_persons_language_falls_back_to_english() -> None:
    english_only = event(
        "case.decided", decision="refused", reason="other", reason_label={"en": "Other reason"}
    )
    assert "Other reason" in WRITER.write(_body(english_only), "zh-Hans").text


def test_a_message_stored_before_names_were_carried_is_still_written() -> None:
    """A delivery retried after the upgrade has its body as it was built: no name keys."""
    refused, licence = _body(REFUSED), _body(LICENCE)
    del refused["data"]["reason_label"], licence["data"]["licence"]["type_label"]
    assert "military end use" in WRITER.write(refused, "zh-Hans").text
    assert "three month" in WRITER.write(licence).text
