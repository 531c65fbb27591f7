"""The applicant reads a refusal's reason and a licence's type by name, in the page's
language: the names review's events carry (`reason_label`, `type_label`), kept with the
decision and the licence in intake's projection and shown by the API and the portal. An
event from before the names were carried still shows its code, in words.

The review events are published here by the test (as test_intake_projection.py does), in a
deployment of this module's own where no review runs; review's side (that it puts the
protocol's names on the events) is tests/unit/review/test_review_event_names.py."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from shared.events import CaseDecided, LicenceIssued, LicenceLine, LicenceRef, new_event
from tests.integration.conftest import application
from tests.people import portal
from tests.portal_fixtures import company_fixture, directory_fixture, staff_fixture  # noqa: F401
from tests.support import Infra, ServiceProcess, running, wait_until

REVIEW = "review.events"
# As review's protocol names them (services/review/domain/protocol.yaml, labels).
QUANTITY = {"en": "Quantity not justified by the end use", "zh-Hans": "数量与所述最终用途不符"}
ANNUAL = {"en": "Annual licence", "zh-Hans": "年度出口许可证"}


@pytest.fixture(scope="module")
def infra(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    """A deployment of this module's own: the review events intake sees are only these
    tests' own."""
    own = infra.isolated(tmp_path_factory.mktemp("names"))
    yield own
    own.drop_schemas()


@pytest.fixture(scope="module")
def intake(infra: Infra) -> Iterator[ServiceProcess]:
    yield from running("intake", infra)


company = company_fixture("Foxtrot Sintering SA")
staff = staff_fixture("Fay Foxtrot")


def _publish(infra: Infra, event_type: str, subject: str, data: BaseModel) -> None:
    event = new_event("reechannel/review", event_type, subject, data)
    fields: dict[Any, Any] = event.to_fields()
    infra.redis().xadd(infra.stream(REVIEW), fields)


def _submitted(
    intake: ServiceProcess, company: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """A fresh application and the references review's events about it carry."""
    with intake.client(company["api_key"]) as api:
        made = api.post("/v1/applications", json=application())
    assert made.status_code == 201, made.text
    app = dict(made.json())
    case_id = str(uuid.uuid4())
    refs = {
        "case_id": case_id,
        "application_id": app["id"],
        "reference": app["reference"],
        "company_id": company["id"],
    }
    return app, refs


def _projected(
    intake: ServiceProcess, company: dict[str, Any], app_id: str, key: str
) -> dict[str, Any]:
    def seen() -> dict[str, Any] | None:
        with intake.client(company["api_key"]) as api:
            view: dict[str, Any] = api.get(f"/v1/applications/{app_id}").json()
        return view if view.get(key) else None

    view = wait_until(seen, timeout=20, what=f"the {key} in intake's projection")
    assert view is not None
    return view


def _pages(browser: httpx.Client, app_id: str) -> dict[str, str]:
    """The application's page in each language (the switch put back to English after)."""
    pages = {
        lang: html.unescape(browser.get(f"/applications/{app_id}?lang={lang}").text)
        for lang in ("en", "zh-Hans")
    }
    browser.get("/?lang=en")
    return pages


def _decision_of(page: str) -> str:
    found = re.search(r"<dt>[^<]*</dt><dd>([^<]*\([^<]*\))</dd>", page)
    assert found is not None, page[:3000]
    return found.group(1)


def test_a_refusals_reason_is_named_in_the_pages_language(
    intake: ServiceProcess, infra: Infra, company: dict[str, Any], staff: dict[str, Any]
) -> None:
    app, refs = _submitted(intake, company)
    decided = CaseDecided(
        **refs, decision="refused", reason="quantity_not_justified", reason_label=QUANTITY
    )
    _publish(infra, "case.decided", refs["case_id"], decided)
    view = _projected(intake, company, app["id"], "decision")
    assert view["decision"]["reason"] == "quantity_not_justified"
    assert view["decision"]["reason_label"] == QUANTITY, "the API shows the names too"
    with portal(intake.url, staff) as browser:
        pages = _pages(browser, app["id"])
    for lang, page in pages.items():
        assert f"({QUANTITY[lang]})" in _decision_of(page), lang
        assert "quantity not justified" not in page


def test_a_licences_type_is_named_in_the_pages_language(
    intake: ServiceProcess, infra: Infra, company: dict[str, Any], staff: dict[str, Any]
) -> None:
    app, refs = _submitted(intake, company)
    licence = LicenceRef(
        number=f"LIC-N-{app['reference']}",
        type="annual",
        type_label=ANNUAL,
        valid_from=date(2026, 12, 1),
        valid_until=date(2027, 12, 1),
        status="active",
        lines=[LicenceLine(line=1, element="Dy", form="metal", approved_quantity_kg=100.0)],
    )
    _publish(infra, "licence.issued", refs["case_id"], LicenceIssued(**refs, licence=licence))
    view = _projected(intake, company, app["id"], "licence")
    assert view["licence"]["type_label"] == ANNUAL, "the API shows the names too"
    with portal(intake.url, staff) as browser:
        pages = _pages(browser, app["id"])
    assert "<dt>Licence type</dt><dd>Annual licence</dd>" in pages["en"]
    assert "<dd>年度出口许可证</dd>" in pages["zh-Hans"]


def test_an_event_from_before_the_names_shows_its_codes_in_words(
    intake: ServiceProcess, infra: Infra, company: dict[str, Any], staff: dict[str, Any]
) -> None:
    app, refs = _submitted(intake, company)
    decided = CaseDecided(**refs, decision="refused", reason="quantity_not_justified")
    _publish(infra, "case.decided", refs["case_id"], decided)
    licence = LicenceRef(
        number=f"LIC-O-{app['reference']}",
        type="three_month",
        valid_from=date(2026, 12, 1),
        valid_until=date(2027, 3, 1),
        status="active",
    )
    _publish(infra, "licence.issued", refs["case_id"], LicenceIssued(**refs, licence=licence))
    view = _projected(intake, company, app["id"], "licence")
    assert view["decision"]["reason_label"] is None
    with portal(intake.url, staff) as browser:
        pages = _pages(browser, app["id"])
    for page in pages.values():
        assert "(quantity not justified)" in _decision_of(page)
        assert "<dd>three month</dd>" in page


def test_the_application_as_submitted_and_the_licence_lines_name_their_codes(
    intake: ServiceProcess, infra: Infra, company: dict[str, Any], staff: dict[str, Any]
) -> None:
    """Intake's own codes (shared/applications.py), named as its application form offers
    them: licence type, element, form, end-use category."""
    app, refs = _submitted(intake, company)
    licence = LicenceRef(
        number=f"LIC-G-{app['reference']}",
        type="three_month",
        valid_from=date(2026, 12, 1),
        valid_until=date(2027, 3, 1),
        status="active",
        lines=[LicenceLine(line=1, element="Dy", form="metal", approved_quantity_kg=100.0)],
    )
    _publish(infra, "licence.issued", refs["case_id"], LicenceIssued(**refs, licence=licence))
    _projected(intake, company, app["id"], "licence")
    with portal(intake.url, staff) as browser:
        pages = _pages(browser, app["id"])
    english = pages["en"].split("The application as submitted")[1]
    for named in ("Three-month licence", "Dy — dysprosium", "<dd>metal</dd>", "Automotive"):
        assert named in english, named
    assert "three_month" not in english and "automotive" not in english
    assert "<td>Dy — dysprosium · metal</td>" in pages["en"], "the licence's lines"
    chinese = pages["zh-Hans"]
    assert "Dy — 镝" in chinese and "<dd>金属</dd>" in chinese and "类别" in chinese
