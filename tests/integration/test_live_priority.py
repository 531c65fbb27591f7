"""Live priority over real processes: urgency ages, tier changes are audited with their
reason, cases that stop production before their decision are flagged and counted, and a
supervisor adopts a draft rule set without a redeploy (issue 18, item 5)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import yaml
from sqlalchemy import text
from sqlalchemy.engine import Engine

from reechannel.simulate.clock import StepClock
from services.review.domain.visibility import view_for
from services.review.service import Casework, rescore_open_cases
from tests.integration.test_review_console_forms import _console, _csrf
from tests.integration.test_review_flow import act, case_of, submit, token
from tests.integration.test_review_protocol import CALM, casework_for
from tests.support import Infra, ServiceProcess, wait_until

TODAY = datetime.now(UTC).date()
# Automotive (20), dysprosium (15), 20 days of stock (10) and a production stop 45 days away
# (5): 50 points, P2. Twenty days on, the stop is 25 days away (15): 60 points, P1.
AGEING = {
    "urgency": {
        "stock_days": 20,
        "production_stop_date": (TODAY + timedelta(days=45)).isoformat(),
        "jobs_at_risk": 0,
    },
    "sme": False,
}


def casework_on(infra: Infra, day: date) -> tuple[Casework, Engine]:
    """Review's casework in this process, its clock standing on `day` (no waiting for it)."""
    casework, engine = casework_for(infra)
    casework.clock = StepClock(datetime.combine(day, time(9), tzinfo=UTC))
    return casework, engine


def get(review: ServiceProcess, credential: str, path: str, **params: Any) -> Any:
    with review.client(credential) as c:
        answer = c.get(path, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()


def audit_actions(review: ServiceProcess, officials: dict[str, Any], case_id: str) -> list[Any]:
    entries = get(review, token(officials, "eu_officer"), f"/v1/cases/{case_id}/audit")["entries"]
    return [e for e in entries if e["action"] == "rescore"]


def test_urgency_ages_and_the_tier_change_is_audited_with_its_reason(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
    infra: Infra,
) -> None:
    app = submit(intake, company_a, **AGEING)
    case = case_of(review, officials, app["reference"])
    assert (case["priority"]["tier"], case["priority"]["score"]) == ("P2", 50)
    soon = {f["rule_id"]: f["explanation"] for f in case["priority"]["fired"]}
    assert "in 45 days" in soon["production_stop_soon"]

    later = TODAY + timedelta(days=20)
    casework, engine = casework_on(infra, later)
    assert rescore_open_cases(engine, casework) >= 1
    eu = token(officials, "eu_officer")
    now = get(review, eu, f"/v1/cases/{case['id']}")
    assert (now["priority"]["tier"], now["priority"]["score"]) == ("P1", 60)
    fired = {f["rule_id"]: f["explanation"] for f in now["priority"]["fired"]}
    assert "in 25 days" in fired["production_stop_near"], "counted from the day scored"
    assert "production_stop_soon" not in fired
    [entry] = audit_actions(review, officials, case["id"])
    assert entry["actor"]["side"] == "system"
    assert (entry["payload"]["from_tier"], entry["payload"]["tier"]) == ("P2", "P1")
    assert later.isoformat() in entry["payload"]["reason"]
    assert "production_stop_near" in entry["payload"]["reason"]
    wait_until(
        lambda: get_applicant(intake, company_a, app["id"])["priority_tier"] == "P1" or None,
        timeout=20,
        what="the applicant sees the new tier",
    )

    # The same day again: nothing is due, nothing changes.
    assert rescore_open_cases(engine, casework) == 0
    assert len(audit_actions(review, officials, case["id"])) == 1


def get_applicant(intake: ServiceProcess, company: dict[str, Any], app_id: str) -> Any:
    with intake.client(company["api_key"]) as c:
        return c.get(f"/v1/applications/{app_id}").json()


def test_a_tier_set_by_hand_stays_when_the_case_is_scored_again(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
    infra: Infra,
) -> None:
    case = case_of(review, officials, submit(intake, company_a, **AGEING)["reference"])
    supervisor = token(officials, "eu_supervisor")
    held = act(review, supervisor, case, "set_priority", tier="P3", reason="hospital supplier")
    assert held.status_code == 200, held.text
    casework, engine = casework_on(infra, TODAY + timedelta(days=21))
    rescore_open_cases(engine, casework)
    now = get(review, supervisor, f"/v1/cases/{case['id']}")
    assert now["priority"]["tier"] == "P3" and now["priority"]["overridden"] is True
    assert now["priority"]["score"] == 60, "the score still follows the day"
    assert audit_actions(review, officials, case["id"]) == []


def test_cases_whose_production_stops_before_the_decision_are_flagged_and_counted(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
) -> None:
    eu = token(officials, "eu_officer")

    def counted() -> int:
        backlog = get(review, eu, "/v1/metrics/summary")["backlog"]
        return int(backlog["stopping_before_decision"])

    before = counted()
    stopping = {
        "urgency": {"stock_days": 3, "production_stop_date": TODAY.isoformat(), "jobs_at_risk": 10}
    }
    late = case_of(review, officials, submit(intake, company_a, **stopping)["reference"])
    calm = case_of(review, officials, submit(intake, company_a, **CALM)["reference"])
    assert late["production_stops_before_decision"] is True
    assert calm["production_stops_before_decision"] is False
    items = get(review, eu, "/v1/cases", limit=200, state="eu_screening")["items"]
    flagged = {i["id"]: i["production_stops_before_decision"] for i in items}
    assert flagged[late["id"]] is True and flagged[calm["id"]] is False
    assert counted() == before + 1
    with _console(review, officials, "eu_officer") as console:
        flagged_row = console.get("/", params={"q": late["reference"]}).text
        calm_row = console.get("/", params={"q": calm["reference"]}).text
        dashboard = console.get("/dashboard").text
    assert late["reference"] in flagged_row and "stops first" in flagged_row
    assert calm["reference"] in calm_row and "stops first" not in calm_row
    assert f'id="kpi-stops-first">{before + 1}<' in dashboard
    with _console(review, officials, "cn_officer") as console:
        assert "kpi-stops-first" not in console.get("/dashboard").text

    with review.client(token(officials, "cn_officer")) as c:
        china = c.get("/v1/metrics/summary").json()
    assert "stopping_before_decision" not in china["backlog"]
    # Derived from the production stop date, so hidden from China like the date itself.
    assert "production_stops_before_decision" not in view_for("CN", late)


def test_a_supervisor_adopts_a_simulated_draft_and_the_open_cases_follow_it(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
) -> None:
    number = f"MOFCOM-ADOPT-{uuid.uuid4().hex[:8]}"
    case = case_of(
        review,
        officials,
        submit(intake, company_a, mofcom_application_number=number, **CALM)["reference"],
    )
    assert case["priority"]["tier"] == "P3"
    supervisor, officer = token(officials, "eu_supervisor"), token(officials, "eu_officer")
    packaged = get(review, supervisor, "/v1/priority/rules")
    boost = {
        "id": "named_for_the_test",
        "description": "This one application, named by its MOFCOM number.",
        "when": {"field": "mofcom_application_number", "eq": number},
        "points": 100,
    }
    draft = {**packaged, "version": f"draft-{number}", "rules": [*packaged["rules"], boost]}
    with review.client(supervisor) as c:
        simulated = c.post("/v1/priority/simulate", json=draft).json()
        assert case["id"] in {ch["case_id"] for ch in simulated["changes"]}
        nonsense = c.post("/v1/priority/rules", json={"rules": {"rules": 1}, "reason": "x"})
        unreasoned = c.post("/v1/priority/rules", json={"rules": draft})
    with review.client(officer) as c:
        refused = c.post("/v1/priority/rules", json={"rules": draft, "reason": "x"})
    assert (nonsense.status_code, unreasoned.status_code, refused.status_code) == (422, 422, 403)
    assert get(review, officer, "/v1/priority/rules")["version"] == packaged["version"]

    with review.client(supervisor) as c:
        adopted = c.post("/v1/priority/rules", json={"rules": draft, "reason": "test boost"})
        again = c.post("/v1/priority/rules", json={"rules": draft, "reason": "again"})
    assert adopted.status_code == 201, adopted.text
    assert adopted.json()["rules_version"] == draft["version"]
    assert adopted.json()["cases_scored"] >= 1
    assert again.status_code == 409
    assert get(review, officer, "/v1/priority/rules")["version"] == draft["version"]
    now = get(review, officer, f"/v1/cases/{case['id']}")
    assert now["priority"]["tier"] == "P1"
    assert now["priority"]["rules_version"] == draft["version"]
    [entry] = audit_actions(review, officials, case["id"])
    assert draft["version"] in entry["payload"]["reason"]
    assert "named_for_the_test" in entry["payload"]["reason"]

    # Back to the rules that were in force, from the console this time: under a version of
    # their own (a version once adopted is never adopted again, and another test of the
    # deployment may have adopted the ones in force before this test began).
    restored = {**packaged, "version": f"restored-{number}"}
    packaged_yaml = yaml.safe_dump(restored, sort_keys=False)
    with _console(review, officials, "eu_supervisor") as console:
        page = console.get("/priority-rules")
        assert page.status_code == 200 and draft["version"] in page.text
        simulated_page = console.post(
            "/priority-rules", data={"csrf": _csrf(page), "do": "simulate", "draft": packaged_yaml}
        )
        assert simulated_page.status_code == 200
        assert now["reference"] in simulated_page.text
        unreasoned_page = console.post(
            "/priority-rules",
            data={"csrf": _csrf(page), "do": "adopt", "draft": packaged_yaml, "reason": ""},
        )
        assert unreasoned_page.status_code == 422
        assert get(review, officer, "/v1/priority/rules")["version"] == draft["version"]
        back = console.post(
            "/priority-rules",
            data={"csrf": _csrf(page), "do": "adopt", "draft": packaged_yaml, "reason": "over"},
        )
        assert back.status_code == 303, back.text[:500]
        shown = console.get(back.headers["location"])
        assert f"Rule set {restored['version']} adopted" in shown.text
    assert get(review, officer, "/v1/priority/rules")["version"] == restored["version"]
    assert get(review, officer, f"/v1/cases/{case['id']}")["priority"]["tier"] == "P3"
    assert len(audit_actions(review, officials, case["id"])) == 2
    with _console(review, officials, "eu_officer") as console:
        read_only = console.get("/priority-rules")
    assert read_only.status_code == 200 and 'name="draft"' not in read_only.text


def test_review_scores_open_cases_again_by_itself_at_its_interval(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
    infra: Infra,
) -> None:
    case = case_of(review, officials, submit(intake, company_a, **AGEING)["reference"])
    _casework, engine = casework_for(infra)

    def scored_on() -> str:
        with engine.connect() as conn:
            day = conn.execute(
                text("SELECT scored_on FROM cases WHERE id = :id"), {"id": case["id"]}
            ).scalar_one()
        return str(day)

    assert scored_on() == TODAY.isoformat()
    replica = ServiceProcess("review", infra.env(REE_PRIORITY_RESCORE_SECONDS="0.5")).start()
    try:
        # As if scored yesterday, twice: the first may meet the replica's round at its start,
        # the second only a round that came an interval later.
        for _round in range(2):
            with engine.begin() as conn:
                conn.execute(
                    text("UPDATE cases SET scored_on = :day WHERE id = :id"),
                    {"day": TODAY - timedelta(days=1), "id": case["id"]},
                )
            wait_until(
                lambda: scored_on() == TODAY.isoformat() or None,
                timeout=30,
                what="the replica scores the case again",
            )
    finally:
        replica.stop()
