"""The applicant sees its licence's shipments and what remains of it (issue 21): China
records shipments in review (real HTTP), `licence.shipment_recorded` travels through review's
outbox and the stream, intake projects it; the API and the portal's page show it, and
nothing of who recorded it. Real intake and review processes."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from tests.integration.test_review_flow import act, applicant_view, case_of, submit, token
from tests.people import portal
from tests.portal_fixtures import company_fixture, directory_fixture, staff_fixture  # noqa: F401
from tests.support import ServiceProcess, wait_until

Officials = dict[str, dict[str, Any]]


company = company_fixture("Echo Magnets GmbH")
staff = staff_fixture("Eli Echo")


def _licensed(
    intake: ServiceProcess, review: ServiceProcess, officials: Officials, company: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """A fresh application, approved by China with 100 kg on its one line."""
    app = submit(intake, company)
    case = case_of(review, officials, app["reference"])
    assert act(review, token(officials, "eu_officer"), case, "admit").status_code == 200
    with review.client(token(officials, "eu_supervisor")) as c:
        assert c.post("/v1/priority-lists", json={"case_ids": [case["id"]]}).status_code == 201
    cn = token(officials, "cn_officer")
    today = date.today().isoformat()
    assert act(review, cn, case, "acknowledge", accepted_on=today).status_code == 200
    number = f"LIC-S-{app['reference']}"
    approved = act(
        review,
        cn,
        case,
        "approve",
        licence={
            "type": "three_month",
            "number": number,
            "valid_from": today,
            "lines": [{"line": 1, "approved_quantity_kg": 100}],
        },
    )
    assert approved.status_code == 200, approved.text
    return app, number


def test_shipments_recorded_in_review_show_at_intakes_api_and_on_the_portal_page(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: Officials,
    company: dict[str, Any],
    staff: dict[str, Any],
) -> None:
    app, number = _licensed(intake, review, officials, company)
    today = date.today().isoformat()
    with review.client(token(officials, "cn_officer")) as c:
        for kg in (60, 15.5):
            shipped = c.post(
                f"/v1/licences/{number}/shipments",
                json={"shipped_on": today, "lines": [{"line": 1, "quantity_kg": kg}]},
            )
            assert shipped.status_code == 201, shipped.text

    view = wait_until(
        lambda: (
            (v := applicant_view(intake, company, app["id"]))["licence"]
            and len(v["licence"].get("shipments", [])) == 2
            and v
        ),
        timeout=20,
        what="both shipments reach intake",
    )
    licence = view["licence"]
    assert [line["quantity_kg"] for s in licence["shipments"] for line in s["lines"]] == [
        60,
        15.5,
    ]
    first = licence["shipments"][0]
    assert first["shipped_on"] == today
    assert first["lines"][0]["line"] == 1 and first["lines"][0]["element"]
    (left,) = licence["remaining"]
    assert left["line"] == 1 and left["remaining_kg"] == 24.5
    assert licence["status"] == "active" and licence["number"] == number
    assert "licence.shipment_recorded" in [t["type"] for t in view["timeline"]]
    seen = json.dumps(licence)
    assert "recorded_by" not in seen and "recorded_at" not in seen
    assert officials["cn_officer"]["id"] not in seen, "who recorded it stays in review"

    with portal(intake.url, staff) as browser:
        page = browser.get(f"/applications/{app['id']}")
        assert page.status_code == 200
        shipments = re.search(
            r'<table class="list" id="licence-shipments">(.*?)</table>', page.text, re.S
        )
        remaining = re.search(
            r'<table class="list" id="licence-remaining">(.*?)</table>', page.text, re.S
        )
        assert shipments is not None and remaining is not None, page.text[:2000]
        assert "60" in shipments.group(1) and "15.5" in shipments.group(1)
        assert "24.5" in remaining.group(1)
        assert "not yet shown here" not in page.text
        zh = browser.get(f"/applications/{app['id']}?lang=zh-Hans")
        browser.get("/?lang=en")
        assert "许可证剩余数量" in zh.text and "该许可证下的发运" in zh.text
        # The type by the name review's protocol gave it on licence.issued, end to end.
        assert "<dt>Licence type</dt><dd>Three-month licence</dd>" in page.text
        assert "<dd>三个月有效期出口许可证</dd>" in zh.text
