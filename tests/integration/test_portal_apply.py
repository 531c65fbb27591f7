"""The portal's new-application form (issue 21): a valid post registers one application as
the API does and leads to its page; an invalid one is shown again with every value kept and
each message next to its field, and nothing is stored; the API's screening (a past production
stop date, a MOFCOM number registered already) and its Idempotency-Key (a form sent twice)
hold in the portal too. Real intake process, real database, real Redis, real HTTP."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.conftest import application
from tests.people import form_nonce, portal
from tests.portal_fixtures import company_fixture, directory_fixture, staff_fixture  # noqa: F401
from tests.support import ServiceProcess

company = company_fixture("Delta Drives GmbH")
staff = staff_fixture("Dora Delta", role="member")


@pytest.fixture
def browser(intake: ServiceProcess, staff: dict[str, Any]) -> Iterator[httpx.Client]:
    with portal(intake.url, staff) as client:
        yield client


@pytest.fixture
def api(intake: ServiceProcess, company: dict[str, Any]) -> Iterator[httpx.Client]:
    with intake.client(company["api_key"]) as client:
        yield client


_NUMBERS = iter(range(1, 10_000))


def mofcom_number() -> str:
    return f"MOFCOM-2026-PA{next(_NUMBERS):04d}-{id(_NUMBERS) % 9973}"


def filled(**changes: str) -> dict[str, str]:
    """A valid form, as a person fills it (one goods line of the three shown)."""
    values = {
        "mofcom_application_number": mofcom_number(),
        "licence_type": "three_month",
        "exporter.name": "Baotou Magnet Co.",
        "exporter.uscc": "91150200MA0N1X2Y3Z",
        "consignee.name": "Delta Drives GmbH",
        "consignee.country": "DE",
        "end_user.name": "Delta Drives GmbH",
        "end_user.country": "DE",
        "end_use.category": "automotive",
        "end_use.description": "traction motors for EV platform X",
        "goods.0.element": "Dy",
        "goods.0.form": "metal",
        "goods.0.hs_code": "2805.30",
        "goods.0.quantity_kg": "120.5",
        "goods.0.value_eur": "51000",
        "urgency.stock_days": "12",
        "urgency.jobs_at_risk": "800",
        "goods_rows": "3",
    }
    return values | changes


def hidden(page: httpx.Response, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def the_form(browser: httpx.Client) -> dict[str, str]:
    """The form's own fields, as the page gives them: CSRF and the form's token."""
    page = browser.get("/apply")
    assert page.status_code == 200, page.text[:500]
    return {"csrf": form_nonce(page), "form_token": hidden(page, "form_token")}


def count(api: httpx.Client) -> int:
    answer = api.get("/v1/applications", params={"limit": 200})
    assert answer.status_code == 200, answer.text
    return len(answer.json()["items"])


def test_the_page_offers_every_field_with_pickers_from_data(browser: httpx.Client) -> None:
    page = browser.get("/apply")
    assert page.status_code == 200
    assert 'href="/apply" aria-current="page"' in page.text  # the nav's entry
    for name in ("mofcom_application_number", "exporter.uscc", "goods.2.hs_code", "sme"):
        assert f'name="{name}"' in page.text
    assert '<option value="Dy">Dy — dysprosium</option>' in page.text
    assert '<option value="2805.30">' in page.text  # the HS codes' suggestions
    assert '<option value="wind_energy">Wind and clean energy</option>' in page.text
    chinese = browser.get("/apply", params={"lang": "zh-Hans"})
    assert "镝" in chinese.text and "稀土金属、钪及钇" in chinese.text


def test_a_valid_form_registers_one_application_and_leads_to_its_page(
    browser: httpx.Client, api: httpx.Client
) -> None:
    before = count(api)
    values = filled(sme="on")
    sent = browser.post("/apply", data=the_form(browser) | values)
    assert sent.status_code == 303, sent.text[:800]
    application_id = sent.headers["location"].removeprefix("/applications/")
    assert count(api) == before + 1
    registered = api.get(f"/v1/applications/{application_id}").json()
    assert registered["mofcom_application_number"] == values["mofcom_application_number"]
    body = registered["application"]
    assert body["goods"] == [
        {
            "element": "Dy",
            "form": "metal",
            "hs_code": "280530",
            "quantity_kg": 120.5,
            "value_eur": 51000.0,
        }
    ]
    assert body["sme"] is True
    assert body["urgency"]["stock_days"] == 12
    assert registered["reference"] in browser.get(sent.headers["location"]).text


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("mofcom_application_number", "", "This field is required."),
        ("mofcom_application_number", "#1", "This is not in the expected format."),
        ("licence_type", "forever", "Choose one of the options."),
        ("exporter.uscc", "1234", "must be 18 characters, digits and capital letters"),
        ("consignee.country", "XX", "must be an ISO 3166-1 alpha-2 country code"),
        ("end_user.name", "", "This field is required."),
        ("end_use.description", "", "This field is required."),
        ("goods.0.hs_code", "2805", "must be 6 to 10 digits (dots allowed)"),
        ("goods.0.quantity_kg", "lots", "Enter a number, such as 120.5."),
        ("goods.0.quantity_kg", "0", "Enter a number greater than 0."),
        ("urgency.stock_days", "12.5", "Enter a whole number."),
        ("urgency.production_stop_date", "15/12/2026", "Enter a date as YYYY-MM-DD."),
    ],
)
def test_each_invalid_field_gets_its_message_next_to_it_and_nothing_is_stored(
    browser: httpx.Client, api: httpx.Client, name: str, value: str, message: str
) -> None:
    before = count(api)
    values = filled(**{name: value})
    shown = browser.post("/apply", data=the_form(browser) | values)
    assert shown.status_code == 422, shown.text[:500]
    field_id = "f-" + name.replace(".", "-")
    _assert_message_at(shown.text, field_id, message)
    assert f'value="{html.escape(values["exporter.name"])}"' in shown.text  # every value kept
    assert count(api) == before


def _assert_message_at(page: str, field_id: str, message: str) -> None:
    tag = re.search(rf'<(?:input|select|textarea) id="{field_id}"[^>]*>', page)
    assert tag is not None, page[:800]
    assert 'aria-invalid="true"' in tag.group(0)
    assert f"{field_id}-error" in tag.group(0)  # aria-describedby names the message
    assert f'<p class="field-error" id="{field_id}-error">{html.escape(message)}</p>' in page
    assert f'<a href="#{field_id}">' in page  # the summary at the top links to the field


def test_the_messages_are_in_the_pages_language(browser: httpx.Client, api: httpx.Client) -> None:
    before = count(api)
    values = filled(**{"exporter.name": "", "goods.0.quantity_kg": "0"})
    chinese = {"lang": "zh-Hans"}
    shown = browser.post("/apply", params=chinese, data=the_form(browser) | values)
    assert shown.status_code == 422
    _assert_message_at(shown.text, "f-exporter-name", "此项为必填项。")
    _assert_message_at(shown.text, "f-goods-0-quantity_kg", "请输入大于 0 的数字。")
    assert "有 2 个问题" in shown.text
    assert count(api) == before


def test_the_screenings_reasons_are_in_the_pages_language(
    browser: httpx.Client, api: httpx.Client
) -> None:
    before = count(api)
    values = filled(
        **{
            "goods.0.element": "Nd",
            "goods.0.form": "oxide",
            "urgency.production_stop_date": "2040-01-01",
        }
    )
    chinese = {"lang": "zh-Hans"}
    shown = browser.post("/apply", params=chinese, data=the_form(browser) | values)
    assert shown.status_code == 422
    reason = "Nd 仅以下列形态实施出口管制：磁体"  # noqa: RUF001 (Chinese punctuation)
    _assert_message_at(shown.text, "f-goods-0-form", reason)
    _assert_message_at(shown.text, "f-urgency-production_stop_date", "距今不得超过 1830 天")
    assert count(api) == before


def test_a_production_stop_date_in_the_past_is_refused_next_to_its_field(
    browser: httpx.Client, api: httpx.Client
) -> None:
    before = count(api)
    values = filled(**{"urgency.production_stop_date": "2020-01-01"})
    shown = browser.post("/apply", data=the_form(browser) | values)
    assert shown.status_code == 422
    _assert_message_at(shown.text, "f-urgency-production_stop_date", "must not be in the past")
    assert 'value="2020-01-01"' in shown.text
    assert count(api) == before


def test_a_mofcom_number_registered_already_names_the_existing_reference(
    browser: httpx.Client, api: httpx.Client
) -> None:
    number = mofcom_number()
    first = api.post("/v1/applications", json=application(mofcom_application_number=number))
    assert first.status_code == 201, first.text
    before = count(api)
    shown = browser.post(
        "/apply", data=the_form(browser) | filled(mofcom_application_number=number)
    )
    assert shown.status_code == 409, shown.text[:500]
    message = (
        f"This MOFCOM application number is registered already as {first.json()['reference']}."
        " A number is registered again only after its application was withdrawn, not admitted"
        " or lapsed."
    )
    _assert_message_at(shown.text, "f-mofcom_application_number", message)
    assert count(api) == before


def test_a_form_sent_twice_registers_one_application(
    browser: httpx.Client, api: httpx.Client
) -> None:
    before = count(api)
    form = the_form(browser) | filled()
    first = browser.post("/apply", data=form)
    again = browser.post("/apply", data=form)
    assert (first.status_code, again.status_code) == (303, 303), again.text[:500]
    assert first.headers["location"] == again.headers["location"]
    assert count(api) == before + 1
    changed = browser.post("/apply", data=form | {"exporter.name": "Another Supplier"})
    assert changed.status_code == 409
    assert "This form was sent already with other content." in changed.text
    assert count(api) == before + 1


def test_a_post_without_the_sessions_csrf_token_is_forbidden_and_stores_nothing(
    browser: httpx.Client, api: httpx.Client
) -> None:
    before = count(api)
    form = the_form(browser) | filled()
    missing = browser.post("/apply", data={k: v for k, v in form.items() if k != "csrf"})
    assert missing.status_code == 403
    wrong = browser.post("/apply", data=form | {"csrf": "0" * 64})
    assert wrong.status_code == 403
    assert count(api) == before


def test_another_goods_line_is_added_without_javascript_keeping_every_value(
    browser: httpx.Client, api: httpx.Client
) -> None:
    before = count(api)
    values = filled(**{"goods.0.hs_code": "bad"})
    shown = browser.post("/apply", data=the_form(browser) | values | {"add_goods_row": "1"})
    assert shown.status_code == 200
    assert 'name="goods.3.element"' in shown.text and 'name="goods.4.element"' not in shown.text
    assert 'name="goods_rows" value="4"' in shown.text
    assert 'value="bad"' in shown.text and "field-error" not in shown.text
    assert count(api) == before
    sent = browser.post(
        "/apply",
        data=the_form(browser)
        | filled(goods_rows="4")
        | {
            "goods.3.element": "Tb",
            "goods.3.form": "oxide",
            "goods.3.hs_code": "2846.90",
            "goods.3.quantity_kg": "3",
        },
    )
    assert sent.status_code == 303, sent.text[:500]
    made = api.get(sent.headers["location"].replace("/applications/", "/v1/applications/"))
    assert [g["element"] for g in made.json()["application"]["goods"]] == ["Dy", "Tb"]


def test_signed_out_the_form_sends_to_sign_in(intake: ServiceProcess) -> None:
    with httpx.Client(base_url=intake.url, timeout=20) as stranger:
        assert stranger.get("/apply").headers["location"] == "/sign-in"
        posted = stranger.post("/apply", data=filled())
        assert posted.status_code == 303 and posted.headers["location"] == "/sign-in"
