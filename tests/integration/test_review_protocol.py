"""The rest of the protocol over real HTTP: priority, fast track, lists, deadlines, decisions."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from sqlmodel import Session

from services.review.service import Casework
from shared.config import CommonSettings
from shared.db import make_engine
from shared.directory import DIRECTORY, Directory
from tests.integration.conftest import application
from tests.integration.test_review_flow import (
    act,
    case_of,
    decide_with_four_eyes,
    submit,
    token,
    wait_status,
)
from tests.support import Infra, ServiceProcess, wait_until

URGENT = {
    "end_use": {"category": "automotive", "description": "EV traction motors"},
    "urgency": {
        "stock_days": 5,
        "production_stop_date": (date.today() + timedelta(days=10)).isoformat(),
        "jobs_at_risk": 5000,
    },
}
CALM = {
    "end_use": {"category": "other", "description": "laboratory reagents"},
    "goods": [{"element": "Y", "form": "oxide", "hs_code": "284690", "quantity_kg": 1}],
    "urgency": None,
}


def casework_for(infra: Infra) -> tuple[Casework, Any]:
    env = infra.env()
    settings = CommonSettings(
        **{k: env[k] for k in ("DATABASE_URL", "REE_SCHEMA_PREFIX", "REE_DATA_DIR") if k in env}
    )
    directory = Directory(make_engine(settings, DIRECTORY), settings.token_secret)
    return Casework(directory), make_engine(settings, "review")


def test_urgent_critical_applications_are_p1_and_can_be_fast_tracked(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
) -> None:
    urgent = case_of(review, officials, submit(intake, company_a, **URGENT)["reference"])
    calm = case_of(review, officials, submit(intake, company_a, **CALM)["reference"])
    assert urgent["priority"]["tier"] == "P1"
    assert calm["priority"]["tier"] == "P3"
    eu = token(officials, "eu_officer")
    supervisor = token(officials, "eu_supervisor")
    assert act(review, eu, urgent, "admit").status_code == 200
    assert act(review, eu, calm, "admit").status_code == 200
    assert act(review, eu, urgent, "fast_track", reason="line stops").status_code == 403
    refused = act(review, supervisor, calm, "fast_track", reason="not urgent")
    assert refused.status_code == 409, "fast track is for P1 cases only"
    moved = act(review, supervisor, urgent, "fast_track", reason="EV line stops in 10 days")
    assert moved.status_code == 200, moved.text
    assert moved.json()["state"] == "cn_review"
    with review.client(token(officials, "cn_officer")) as c:
        assert c.get(f"/v1/cases/{urgent['id']}").status_code == 200
        assert c.get(f"/v1/cases/{calm['id']}").status_code == 404


def test_a_priority_list_orders_cases_by_tier_and_a_supervisor_can_override_the_tier(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
) -> None:
    eu = token(officials, "eu_officer")
    supervisor = token(officials, "eu_supervisor")
    calm = case_of(review, officials, submit(intake, company_a, **CALM)["reference"])
    urgent = case_of(review, officials, submit(intake, company_a, **URGENT)["reference"])
    for case in (calm, urgent):
        assert act(review, eu, case, "admit").status_code == 200
    assert act(review, eu, calm, "set_priority", tier="P1", reason="x").status_code == 403
    override = act(review, supervisor, calm, "set_priority", tier="P2", reason="hospital supplier")
    assert override.status_code == 200, override.text
    assert override.json()["priority"]["tier"] == "P2"
    assert override.json()["priority"]["overridden"] is True
    with review.client(eu) as c:
        assert c.post("/v1/priority-lists", json={"case_ids": [calm["id"]]}).status_code == 403
    with review.client(supervisor) as c:
        issued = c.post("/v1/priority-lists", json={"case_ids": [calm["id"], urgent["id"]]})
        again = c.post("/v1/priority-lists", json={"case_ids": [calm["id"]]})
        listed = c.get(f"/v1/priority-lists/{issued.json()['number']}").json()
    assert issued.status_code == 201, issued.text
    assert [e["case_id"] for e in issued.json()["cases"]] == [urgent["id"], calm["id"]]
    assert [e["position"] for e in listed["cases"]] == [1, 2]
    assert again.status_code == 409, "cases already sent are not queued any more"


def test_the_eu_queue_is_sorted_by_tier_then_deadline_then_age(
    review: ServiceProcess, officials: dict[str, Any]
) -> None:
    with review.client(token(officials, "eu_officer")) as c:
        items = c.get("/v1/cases", params={"state": "eu_screening", "limit": 200}).json()["items"]
    keys = [(i["priority"]["tier"], i["deadlines"].get("stage_due") or "9999") for i in items]
    assert keys == sorted(keys)


def test_simulating_a_draft_rule_set_reports_tier_changes_without_changing_cases(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
) -> None:
    case = case_of(review, officials, submit(intake, company_a, **CALM)["reference"])
    with review.client(token(officials, "eu_supervisor")) as c:
        current = c.get("/v1/priority/rules").json()
        draft = {**current, "version": "draft-all-p1", "thresholds": {"P1": 0, "P2": -1}}
        r = c.post("/v1/priority/simulate", json=draft)
        bad = c.post("/v1/priority/simulate", json={"rules": "nonsense"})
        after = c.get(f"/v1/cases/{case['id']}").json()
    with review.client(token(officials, "eu_officer")) as c:
        assert c.post("/v1/priority/simulate", json=draft).status_code == 403
    assert bad.status_code == 422
    assert r.status_code == 200, r.text
    changes = {ch["case_id"]: ch for ch in r.json()["changes"]}
    assert changes[case["id"]]["from_tier"] == "P3"
    assert changes[case["id"]]["to_tier"] == "P1"
    assert after["priority"]["tier"] == "P3", "simulation changes nothing"


def test_an_unanswered_request_lapses_after_its_limit(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
    infra: Infra,
) -> None:
    app = submit(intake, company_a)
    case = case_of(review, officials, app["reference"])
    r = act(
        review,
        token(officials, "eu_officer"),
        case,
        "request_information",
        question="Contract?",
        due_in_working_days=5,
    )
    assert r.status_code == 200, r.text
    request = r.json()["information_requests"][0]
    assert date.fromisoformat(request["due"]) > date.today()
    casework, engine = casework_for(infra)
    with Session(engine) as session:
        assert casework.check_deadlines(session, today=date.today()) == 0
    reminder_day = date.fromisoformat(request["due"]) - timedelta(days=1)
    for _ in range(2):  # the reminder goes out once, however often the ticker runs
        with Session(engine) as session:
            casework.check_deadlines(session, today=reminder_day)
            session.commit()
    reminders = wait_until(
        lambda: [
            json.loads(f["data"])
            for _i, f in infra.redis().xrange(infra.stream("review.events"))
            if f["type"] == "case.information_reminder" and f["subject"] == case["id"]
        ],
        what="reminder event",
    )
    assert [r["request"]["id"] for r in reminders] == [request["id"]]
    with Session(engine) as session:
        casework.check_deadlines(session, today=date.today() + timedelta(days=60))
        session.commit()
    view = wait_status(intake, company_a, app["id"], "lapsed")
    assert view["information_requests"][0]["status"] == "lapsed"
    with review.client(token(officials, "eu_officer")) as c:
        history = [e["action"] for e in c.get(f"/v1/cases/{case['id']}/audit").json()["entries"]]
    assert history[-3:] == ["reminder_sent", "deadline_breached", "lapse"]


def test_a_breached_chinese_review_escalates_to_joint_review_and_can_end_in_refusal(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
    infra: Infra,
) -> None:
    app = submit(intake, company_a)
    case = case_of(review, officials, app["reference"])
    assert act(review, token(officials, "eu_officer"), case, "admit").status_code == 200
    with review.client(token(officials, "eu_supervisor")) as c:
        assert c.post("/v1/priority-lists", json={"case_ids": [case["id"]]}).status_code == 201
    cn, cn_supervisor = token(officials, "cn_officer"), token(officials, "cn_supervisor")
    future = (date.today() + timedelta(days=3)).isoformat()
    assert act(review, cn, case, "acknowledge", accepted_on=future).status_code == 422
    assert (
        act(review, cn, case, "acknowledge", accepted_on=date.today().isoformat()).status_code
        == 200
    )
    casework, engine = casework_for(infra)
    with Session(engine) as session:
        casework.check_deadlines(session, today=date.today() + timedelta(days=90))
        session.commit()
    with review.client(cn) as c:
        escalated = c.get(f"/v1/cases/{case['id']}").json()
    assert escalated["state"] == "joint_review"
    breaches = wait_until(
        lambda: [
            json.loads(f["data"])
            for _i, f in infra.redis().xrange(infra.stream("review.events"))
            if f["type"] == "case.deadline_breached" and f["subject"] == case["id"]
        ],
        what="breach event relayed from the outbox",
    )
    assert breaches and breaches[0]["stage"] == "cn_review"
    meeting = {
        "held_on": date.today().isoformat(),
        "participants": [officials["eu_supervisor"]["id"], officials["cn_supervisor"]["id"]],
        "outcome": "MOFCOM to decide",
    }
    assert act(review, cn, case, "return_to_review", meeting=meeting).status_code == 403
    back = act(review, cn_supervisor, case, "return_to_review", meeting=meeting)
    assert back.status_code == 200 and back.json()["state"] == "cn_review"
    assert act(review, cn, case, "refuse", reason="other").status_code == 422, "other needs detail"
    refused = decide_with_four_eyes(review, officials, case, "refuse", reason="listed_entity")
    assert refused.status_code == 200, refused.text
    wait_status(intake, company_a, app["id"], "refused")
    view = wait_until(
        lambda: (v := _view(intake, company_a, app["id"]))["decision"] and v,
        what="the decision reaches the applicant's view",
    )
    assert view["decision"]["reason"] == "listed_entity"


def test_an_eu_officer_can_decline_a_case_out_of_scope(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
) -> None:
    app = submit(intake, company_a, **CALM)
    case = case_of(review, officials, app["reference"])
    r = decide_with_four_eyes(review, officials, case, "decline", reason="goods_not_controlled")
    assert r.status_code == 200, r.text
    assert r.json()["allowed_actions"] == []
    wait_status(intake, company_a, app["id"], "not_admitted")


def test_the_protocol_is_served_as_data(review: ServiceProcess, officials: dict[str, Any]) -> None:
    with review.client(token(officials, "cn_officer")) as c:
        protocol = c.get("/v1/protocol").json()
    assert {"eu_screening", "cn_review", "lapsed"} <= set(protocol["states"])
    assert "approve" in protocol["actions"]
    assert protocol["version"]


def test_assignment_sets_the_point_of_contact_shown_to_the_applicant(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
) -> None:
    app = submit(intake, company_a, **application())
    case = case_of(review, officials, app["reference"])
    supervisor = token(officials, "eu_supervisor")
    officer_id = officials["eu_officer"]["id"]
    with review.client(token(officials, "eu_officer")) as c:
        refused = c.post(
            f"/v1/cases/{case['id']}/assign", json={"official_id": officials["eu_supervisor"]["id"]}
        )
    with review.client(supervisor) as c:
        given = c.post(f"/v1/cases/{case['id']}/assign", json={"official_id": officer_id})
        cross = c.post(
            f"/v1/cases/{case['id']}/assign", json={"official_id": officials["cn_officer"]["id"]}
        )
    assert refused.status_code == 403
    assert given.status_code == 200, given.text
    assert given.json()["points_of_contact"]["EU"]["id"] == officer_id
    assert cross.status_code == 422
    with review.client(token(officials, "eu_officer")) as c:
        mine = [
            i["id"]
            for i in c.get("/v1/cases", params={"assigned": "me", "limit": 200}).json()["items"]
        ]
    assert case["id"] in mine
    wait_until(
        lambda: (
            (v := _view(intake, company_a, app["id"]))["point_of_contact"]
            and v["point_of_contact"]["id"] == officer_id
        ),
        timeout=20,
        what="applicant sees the EU point of contact",
    )


def _view(intake: ServiceProcess, company: dict[str, Any], app_id: str) -> dict[str, Any]:
    with intake.client(company["api_key"]) as c:
        return dict(c.get(f"/v1/applications/{app_id}").json())
