"""Intake's input rules as pure functions: free text, numbers, codes, dates, references, files
(red-team findings F2, F8, F9, F18 and the reference numbers)."""

from __future__ import annotations

import io
import itertools
import zipfile
from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.intake import domain
from shared.applications import ApplicationBody
from shared.events import CloudEvent, LicenceIssued
from shared.text import text_problem
from tests.integration.conftest import application

TODAY = date(2026, 12, 1)
# 280530 in Arabic-Indic and in full-width digits.
ARABIC_INDIC = "\u0662\u0668\u0660\u0665\u0663\u0660"
FULL_WIDTH = "\uff12\uff18\uff10\uff15\uff13\uff10"


def _refused(body: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        ApplicationBody.model_validate(body)
    return [".".join(str(p) for p in e["loc"]) for e in caught.value.errors()]


@pytest.mark.parametrize(
    "text",
    [
        "Bosch\x00GmbH",
        "Bosch\x07GmbH",
        "Bosch\u202eHbmG",
        "Bosch\u2066GmbH\u2069",
        "\u200b\u200b",
        " \u2060 \ufeff ",
        "\ud800",
    ],
)
def test_free_text_with_controls_bidi_or_nothing_visible_is_refused(text: str) -> None:
    assert text_problem(text, multiline=True) is not None


def test_line_breaks_only_in_multiline_text() -> None:
    assert text_problem("line one\nline two\tend", multiline=True) is None
    assert text_problem("line one\nline two", multiline=False) is not None
    assert text_problem("Société Générale — 北京稀土 ‍👩‍🔧", multiline=False) is None


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("exporter", {"name": "Baotou\u202e Co.", "uscc": "91150200MA0N1X2Y3Z"}),
        ("consignee", {"name": "\u200b", "country": "DE"}),
        ("end_user", {"name": "Bosch\x00", "country": "DE"}),
        ("end_use", {"category": "automotive", "description": "motors\u2067"}),
    ],
)
def test_every_free_text_field_of_an_application_takes_the_text_rule(
    path: str, value: dict[str, Any]
) -> None:
    fields = _refused(application(**{path: value}))
    assert any(f.startswith(path + ".") for f in fields), fields


@pytest.mark.parametrize("country", ["XX", "ZZ", "QQ", "EU"])
def test_a_country_must_be_an_assigned_iso_3166_code(country: str) -> None:
    assert _refused(application(consignee={"name": "Bosch GmbH", "country": country})) == [
        "consignee.country"
    ]


@pytest.mark.parametrize(
    "hs_code",
    [
        ARABIC_INDIC,
        FULL_WIDTH,
        ".280530",
        "2805..30",
        "280530.",
        "2805\u00a030",
    ],
)
def test_an_hs_code_is_ascii_digits_with_inner_dots_only(hs_code: str) -> None:
    goods = [{"element": "Dy", "form": "metal", "hs_code": hs_code, "quantity_kg": 1}]
    assert _refused(application(goods=goods)) == ["goods.0.hs_code"]


def test_a_uscc_is_checked_before_case_folding() -> None:
    exporter = {"name": "Baotou", "uscc": "91150200MA0N1X2Y3ß"}
    assert _refused(application(exporter=exporter)) == ["exporter.uscc"]
    lower = {"name": "Baotou", "uscc": "91150200ma0n1x2y3z"}
    body = ApplicationBody.model_validate(application(exporter=lower))
    assert body.exporter.uscc == "91150200MA0N1X2Y3Z"


@pytest.mark.parametrize("number", ["Infinity", "-Infinity", "NaN", "1e400"])
@pytest.mark.parametrize(
    "where",
    ["urgency.contract_value_eur", "goods.0.quantity_kg", "goods.0.value_eur"],
)
def test_non_finite_numbers_are_refused_in_json(number: str, where: str) -> None:
    import json

    text = json.dumps(application(urgency={"contract_value_eur": 5}))
    section, *rest = where.split(".")
    body = json.loads(text)
    target: Any = body[section]
    for part in rest[:-1]:
        target = target[int(part)]
    target[rest[-1]] = "__N__"
    raw = json.dumps(body).replace('"__N__"', number)
    with pytest.raises(ValidationError) as caught:
        ApplicationBody.model_validate_json(raw)
    assert [".".join(str(p) for p in e["loc"]) for e in caught.value.errors()] == [where]


def test_a_contract_value_has_an_upper_bound() -> None:
    assert _refused(application(urgency={"contract_value_eur": 1e300})) == [
        "urgency.contract_value_eur"
    ]


def test_an_event_with_a_non_finite_number_is_refused_not_stored() -> None:
    fields = {
        "id": "e1",
        "source": "reechannel/review",
        "type": "licence.issued",
        "subject": "c1",
        "time": "2026-12-01T10:00:00+00:00",
        "data": '{"application_id":"a","reference":"REC-2026-00000001","company_id":"c",'
        '"case_id":"c1","licence":{"number":"L1","type":"annual","valid_from":"2026-12-01",'
        '"valid_until":"2027-12-01","status":"active","lines":[{"line":1,"element":"Dy",'
        '"form":"metal","approved_quantity_kg":Infinity}]}}',
    }
    event = CloudEvent.from_fields(fields)
    with pytest.raises(ValidationError):
        event.payload()
    assert LicenceIssued.model_validate(
        {**event.data, "licence": {**event.data["licence"], "lines": []}}
    )


@pytest.mark.parametrize(
    ("stop", "problem"),
    [
        (date(1, 1, 1), True),
        (TODAY - timedelta(days=2), True),
        (TODAY - timedelta(days=1), False),
        (TODAY, False),
        (TODAY + timedelta(days=domain.PRODUCTION_STOP_MAX_DAYS_AHEAD), False),
        (TODAY + timedelta(days=domain.PRODUCTION_STOP_MAX_DAYS_AHEAD + 1), True),
        (date(9999, 12, 31), True),
    ],
)
def test_a_production_stop_date_is_neither_past_nor_far_ahead(stop: date, problem: bool) -> None:
    assert (domain.production_stop_problem(stop, TODAY) is not None) is problem


def test_references_are_a_keyed_permutation_not_a_counter() -> None:
    references = domain.References("one key")
    sample = [references.digits(n) for n in range(1, 2001)]
    assert len(set(sample)) == len(sample)  # never the same reference twice
    assert all(len(d) == 8 and d.isascii() and d.isdigit() for d in sample)
    # Consecutive numbers give references far apart, in no order.
    assert sum(1 for a, b in itertools.pairwise(sample) if int(b) > int(a)) < 1200
    assert len({abs(int(b) - int(a)) for a, b in itertools.pairwise(sample)}) > 1900
    # Another key, other references; the old six-digit ones cannot collide with any.
    assert domain.References("another key").digits(1) != references.digits(1)
    assert references.reference(2026, 123).startswith("REC-2026-")
    assert len(references.reference(2026, 123)) == len("REC-2026-") + 8
    # The permutation is one-to-one over all 10^8 values (checked on a slice of inputs).
    assert len({references.digits(n) for n in range(10**8 - 5000, 10**8)}) == 5000
    assert references.digits(10**8 + 7) == "1" + references.digits(7)


def test_text_is_checked_throughout_not_just_its_head() -> None:
    whole = domain.TextCheck()
    for chunk in (b"a" * 9000, "é".encode()[:1], "é".encode()[1:], b"end\n"):
        whole.feed(chunk)
    whole.feed(b"", final=True)
    assert whole.is_text
    late_nul = domain.TextCheck()
    late_nul.feed(b"a" * 9000)
    late_nul.feed(b"MZ\x90\x00")
    late_nul.feed(b"", final=True)
    assert not late_nul.is_text
    late_binary = domain.TextCheck()
    late_binary.feed(b"a" * 9000 + b"\xff\xfe")
    late_binary.feed(b"", final=True)
    assert not late_binary.is_text


def _office(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            # A fixed date: the bytes (and so the test's id) are the same in every process
            # that collects the tests (pytest-xdist's workers must agree on them).
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), "<x/>")
    return buffer.getvalue()


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


@pytest.mark.parametrize(
    ("content_type", "content", "whole"),
    [
        ("application/pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n", True),
        ("application/pdf", b"%PDF-1.4\n%%EOF\n" + b"MZ" + b"\x90" * 5000, False),
        ("image/png", b"\x89PNG\r\n\x1a\n" + b"x" * 100 + PNG_END, True),
        ("image/png", b"\x89PNG\r\n\x1a\n" + b"x" * 100 + PNG_END + b"PK\x03\x04", False),
        ("image/jpeg", b"\xff\xd8\xff\xe0" + b"x" * 100 + b"\xff\xd9", True),
        ("image/jpeg", b"\xff\xd8\xff\xe0" + b"x" * 100, False),
        (DOCX, _office(["[Content_Types].xml", "word/document.xml"]), True),
        (DOCX, _office(["[Content_Types].xml", "payload.exe"]), False),
        (DOCX, b"PK\x03\x04" + b"\x00" * 200, False),
    ],
    ids=[
        "pdf",
        "pdf-with-an-executable-after-its-end",
        "png",
        "png-with-a-zip-after-its-end",
        "jpeg",
        "jpeg-without-its-end",
        "docx",
        "docx-holding-an-executable",
        "docx-not-a-zip",
    ],
)
def test_binary_types_are_checked_for_their_structure(
    content_type: str, content: bytes, whole: bool
) -> None:
    assert (domain.structure_problem(io.BytesIO(content), content_type) is None) is whole
