"""The EU metrics' `backlog.stopping_before_decision` is read off case_counts (a few rows at
any size, docs/benchmarks.md) and stays equal to counting the cases as they open, as their
expected decision date moves past their production stop, and as they close."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlmodel import Session

from services.review.domain.protocol import Protocol
from services.review.queue import stopping_before_decision
from tests.integration.test_live_priority import get
from tests.integration.test_review_flow import act, case_of, submit, token
from tests.integration.test_review_protocol import casework_for
from tests.metrics_oracle import stopping_before_decision_from_cases
from tests.support import Infra, ServiceProcess, wait_until

TODAY = datetime.now(UTC).date()


def stopping(day: date) -> dict[str, Any]:
    return {"urgency": {"stock_days": 200, "production_stop_date": day.isoformat()}}


def test_the_count_follows_opening_a_moved_decision_date_and_closing(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
    infra: Infra,
) -> None:
    eu = token(officials, "eu_officer")
    protocol = Protocol.load()
    _, engine = casework_for(infra)

    def counted() -> int:
        served = int(get(review, eu, "/v1/metrics/summary")["backlog"]["stopping_before_decision"])
        with Session(engine) as session:
            # What the cases say, counted one by one, and the service's own reading.
            assert served == stopping_before_decision_from_cases(session, protocol)
            assert served == stopping_before_decision(session, protocol)
        return served

    def case(c: dict[str, Any]) -> dict[str, Any]:
        return dict(get(review, eu, f"/v1/cases/{c['id']}"))

    before = counted()
    # A production stop far away: not counted. One today: counted.
    far = case_of(
        review,
        officials,
        submit(intake, company_a, **stopping(TODAY.replace(year=TODAY.year + 3)))["reference"],
    )
    assert far["production_stops_before_decision"] is False
    assert counted() == before
    soon_app = submit(intake, company_a, **stopping(TODAY))
    soon = case_of(review, officials, soon_app["reference"])
    assert soon["production_stops_before_decision"] is True
    assert counted() == before + 1

    # A stop on the very day of the expected decision is not before it; asking the applicant
    # for information moves the expected decision later, past the stop: now counted.
    expected = date.fromisoformat(far["expected_decision_date"])
    edge = case_of(review, officials, submit(intake, company_a, **stopping(expected))["reference"])
    assert edge["expected_decision_date"] == far["expected_decision_date"]
    assert edge["production_stops_before_decision"] is False
    assert counted() == before + 1
    asked = act(review, eu, edge, "request_information", question="Stock?", due_in_working_days=20)
    assert asked.status_code == 200, asked.text
    moved = case(edge)
    assert date.fromisoformat(moved["expected_decision_date"]) > expected
    assert moved["production_stops_before_decision"] is True
    assert counted() == before + 2

    # Closing a counted case takes it off: it is no longer open.
    with intake.client(company_a["api_key"]) as c:
        assert c.post(f"/v1/applications/{soon_app['id']}/withdraw").status_code == 200
    wait_until(
        lambda: case(soon)["state"] == "withdrawn" or None, timeout=20, what="case withdrawn"
    )
    assert counted() == before + 1
    assert act(review, eu, far, "admit").status_code == 200
    assert counted() == before + 1
