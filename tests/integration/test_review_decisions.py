"""Safe decisions over real HTTP (issue 18, items 4 and 6): four eyes on a decline and a
refusal, acknowledge once and its correction, the joint meeting recorded."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import Session

from services.review.service import Who
from services.review.store import Case
from tests.integration.test_review_flow import (
    act,
    applicant_view,
    case_of,
    countersign,
    submit,
    token,
    wait_status,
)
from tests.integration.test_review_protocol import casework_for
from tests.support import Infra, ServiceProcess

Officials = dict[str, dict[str, Any]]


def in_cn_review(
    intake: ServiceProcess, review: ServiceProcess, officials: Officials, company: Any
) -> dict[str, Any]:
    """A case admitted and sent to China on a list of its own."""
    case = case_of(review, officials, submit(intake, company)["reference"])
    assert act(review, token(officials, "eu_officer"), case, "admit").status_code == 200
    with review.client(token(officials, "eu_supervisor")) as c:
        r = c.post("/v1/priority-lists", json={"case_ids": [case["id"]]})
        assert r.status_code == 201, r.text
    return case


def view(review: ServiceProcess, officials: Officials, who: str, case: dict[str, Any]) -> Any:
    with review.client(token(officials, who)) as c:
        r = c.get(f"/v1/cases/{case['id']}")
        assert r.status_code == 200, r.text
        return r.json()


def audit_text(review: ServiceProcess, officials: Officials, who: str, case: dict[str, Any]) -> str:
    with review.client(token(officials, who)) as c:
        r = c.get(f"/v1/cases/{case['id']}/audit")
        assert r.status_code == 200, r.text
        return r.text


def proposal_call(
    review: ServiceProcess,
    officials: Officials,
    who: str,
    case: dict[str, Any],
    proposal_id: str,
    verb: str,
    **body: Any,
) -> httpx.Response:
    with review.client(token(officials, who)) as c:
        return c.post(f"/v1/cases/{case['id']}/proposals/{proposal_id}/{verb}", json=body or None)


# --- four eyes ------------------------------------------------------------------------------


def test_an_eu_decline_takes_effect_only_when_another_eu_supervisor_countersigns(
    intake: ServiceProcess, review: ServiceProcess, officials: Officials, company_a: Any
) -> None:
    app = submit(intake, company_a)
    case = case_of(review, officials, app["reference"])
    proposed = act(review, token(officials, "eu_officer"), case, "decline", reason="out_of_scope")
    assert proposed.status_code == 200, proposed.text
    pending = proposed.json()
    assert pending["state"] == "eu_screening", "a proposal changes no state"
    assert pending["version"] == case["version"], "nor the version the other side could read"
    (proposal,) = pending["proposals"]
    assert proposal["action"] == "decline" and proposal["params"] == {"reason": "out_of_scope"}
    assert proposal["proposed_by"]["id"] == officials["eu_officer"]["id"]
    assert proposal["allowed"] == ["withdraw"], "its proposer may only withdraw it"
    assert "decline" not in pending["allowed_actions"], "one proposal at a time"
    again = act(review, token(officials, "eu_supervisor"), case, "decline", reason="other")
    assert again.status_code == 422, "parameters are checked before the pending proposal"
    second = act(
        review, token(officials, "eu_supervisor"), case, "decline", reason="incomplete_file"
    )
    assert second.status_code == 409, second.text
    assert applicant_view(intake, company_a, app["id"])["status"] == "eu_screening"

    supervisor_view = view(review, officials, "eu_supervisor", case)
    assert supervisor_view["proposals"][0]["allowed"] == ["countersign", "reject", "withdraw"]
    by_officer = countersign(review, token(officials, "eu_officer"), case, proposal["id"])
    assert by_officer.status_code == 403, "not by its proposer, not by an officer"
    with review.client(token(officials, "cn_supervisor")) as c:
        by_china = c.post(
            f"/v1/cases/{case['id']}/proposals/{proposal['id']}/countersign",
            headers={"If-Match": str(supervisor_view["version"])},
        )
    assert by_china.status_code == 404, "China never had the case"
    with review.client(token(officials, "eu_supervisor")) as c:
        missing = c.post(f"/v1/cases/{case['id']}/proposals/{proposal['id']}/countersign")
    assert missing.status_code == 428, "If-Match, as for an action"
    assert view(review, officials, "eu_officer", case)["state"] == "eu_screening"

    done = countersign(review, token(officials, "eu_supervisor"), case, proposal["id"])
    assert done.status_code == 200, done.text
    decided = done.json()
    assert decided["state"] == "not_admitted" and decided["proposals"] == []
    entries = [e for e in decided["history"] if e["action"] in ("proposed", "decline")]
    assert [e["action"] for e in entries] == ["proposed", "decline"]
    assert entries[0]["actor"]["id"] == officials["eu_officer"]["id"]
    assert entries[1]["actor"]["id"] == officials["eu_supervisor"]["id"]
    assert entries[1]["payload"] == {
        "reason": "out_of_scope",
        "proposal_id": proposal["id"],
        "proposed_by": officials["eu_officer"]["id"],
    }
    twice = countersign(review, token(officials, "eu_supervisor"), case, proposal["id"])
    assert twice.status_code == 409
    wait_status(intake, company_a, app["id"], "not_admitted")


def test_a_chinese_refusal_proposal_stays_with_china_until_countersigned(
    intake: ServiceProcess, review: ServiceProcess, officials: Officials, company_a: Any
) -> None:
    case = in_cn_review(intake, review, officials, company_a)
    detail = f"CN-PROPOSAL-DETAIL-{uuid.uuid4().hex[:8]}"
    cn = token(officials, "cn_officer")
    proposed = act(review, cn, case, "refuse", reason="other", detail=detail)
    assert proposed.status_code == 200, proposed.text
    (proposal,) = proposed.json()["proposals"]
    eu = view(review, officials, "eu_supervisor", case)
    assert eu["proposals"] == [] and eu["state"] == "cn_review"
    eu_texts = [str(eu), audit_text(review, officials, "eu_officer", case)]
    assert not [t for t in eu_texts if detail in t or proposal["id"] in t], "hidden from the EU"
    with review.client(token(officials, "eu_supervisor")) as c:
        for verb in ("countersign", "reject", "withdraw"):
            r = c.post(
                f"/v1/cases/{case['id']}/proposals/{proposal['id']}/{verb}",
                headers={"If-Match": str(eu["version"])},
            )
            assert r.status_code == 404, (verb, r.text)
            assert proposal["id"] not in r.text and detail not in r.text
    assert detail in audit_text(review, officials, "cn_supervisor", case)

    rejected = proposal_call(
        review, officials, "cn_supervisor", case, proposal["id"], "reject", reason="not proven"
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["state"] == "cn_review" and rejected.json()["proposals"] == []
    assert (
        proposal_call(review, officials, "cn_officer", case, proposal["id"], "withdraw").status_code
        == 409
    )

    again = act(review, cn, case, "refuse", reason="listed_entity")
    (second,) = again.json()["proposals"]
    by_officer = proposal_call(review, officials, "cn_officer", case, second["id"], "withdraw")
    assert by_officer.status_code == 200, by_officer.text
    history = [e["action"] for e in by_officer.json()["history"]]
    assert history[-4:] == ["proposed", "proposal_rejected", "proposed", "proposal_withdrawn"]

    third = act(review, cn, case, "refuse", reason="listed_entity").json()["proposals"][0]
    done = countersign(review, token(officials, "cn_supervisor"), case, third["id"])
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "refused"
    eu_after = view(review, officials, "eu_officer", case)
    assert eu_after["state"] == "refused"
    refusal = next(e for e in eu_after["history"] if e["action"] == "refuse")
    assert refusal["payload"]["reason"] == "listed_entity", "the decision itself both sides see"
    assert not [e for e in eu_after["history"] if e["action"].startswith("proposal")]


def test_a_proposal_is_superseded_when_the_case_moves_on(
    intake: ServiceProcess, review: ServiceProcess, officials: Officials, company_a: Any
) -> None:
    case = case_of(review, officials, submit(intake, company_a)["reference"])
    eu = token(officials, "eu_officer")
    proposal = act(review, eu, case, "decline", reason="out_of_scope").json()["proposals"][0]
    admitted = act(review, token(officials, "eu_supervisor"), case, "admit")
    assert admitted.status_code == 200, admitted.text
    assert admitted.json()["state"] == "queued" and admitted.json()["proposals"] == []
    superseded = [e for e in admitted.json()["history"] if e["action"] == "proposal_superseded"]
    assert superseded[0]["payload"]["proposal_id"] == proposal["id"]
    assert superseded[0]["payload"]["by_action"] == "admit"
    late = countersign(review, token(officials, "eu_supervisor"), case, proposal["id"])
    assert late.status_code == 409 and "superseded" in late.text


def test_the_protocol_document_names_the_actions_that_need_a_countersignature(
    review: ServiceProcess, officials: Officials
) -> None:
    with review.client(token(officials, "cn_officer")) as c:
        actions = c.get("/v1/protocol").json()["actions"]
    assert {a for a, spec in actions.items() if "countersign" in spec} == {"decline", "refuse"}


# --- acknowledge once, and its correction ------------------------------------------------------


def test_a_second_acknowledgement_is_refused_and_the_statutory_date_stays(
    intake: ServiceProcess, review: ServiceProcess, officials: Officials, company_a: Any
) -> None:
    case = in_cn_review(intake, review, officials, company_a)
    cn = token(officials, "cn_officer")
    today = date.today()
    first = act(review, cn, case, "acknowledge", accepted_on=today.isoformat())
    assert first.status_code == 200, first.text
    statutory = first.json()["deadlines"]["statutory_due"]
    assert "acknowledge" not in first.json()["allowed_actions"]
    second = act(review, cn, case, "acknowledge", accepted_on=(today - timedelta(1)).isoformat())
    assert second.status_code == 409, second.text
    after = view(review, officials, "cn_officer", case)
    assert after["deadlines"]["statutory_due"] == statutory
    assert [e["action"] for e in after["history"]].count("acknowledge") == 1


def test_a_cn_supervisor_corrects_the_acceptance_date_with_a_reason_and_the_clock_follows(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: Officials,
    company_a: Any,
    infra: Infra,
) -> None:
    case = in_cn_review(intake, review, officials, company_a)
    today = date.today()

    def correct(who: str, **params: Any) -> httpx.Response:
        return act(review, token(officials, who), case, "correct_acceptance_date", **params)

    early = correct("cn_supervisor", accepted_on=today.isoformat(), reason="x")
    assert early.status_code == 409, "nothing to correct before the acknowledgement"
    cn = token(officials, "cn_officer")
    assert act(review, cn, case, "acknowledge", accepted_on=today.isoformat()).status_code == 200
    before = view(review, officials, "cn_supervisor", case)["deadlines"]["statutory_due"]
    for who in ("cn_officer", "eu_supervisor"):
        assert correct(who, accepted_on=today.isoformat(), reason="x").status_code == 403, who
    no_reason = correct("cn_supervisor", accepted_on=today.isoformat())
    assert no_reason.status_code == 422
    assert [e["field"] for e in no_reason.json()["errors"]] == ["reason"]
    # Ten days on (the service layer's own clock), MOFCOM's letter turns out to be dated the 6th.
    later = datetime.now(UTC) + timedelta(days=10)
    casework, engine = casework_for(infra)
    casework.clock = _Fixed(later)
    corrected_day = today + timedelta(days=6)
    with Session(engine) as session:
        stored = session.get(Case, case["id"])
        assert stored is not None
        who = Who(officials["cn_supervisor"]["id"], "CN", "supervisor", "CN supervisor")
        params = {"accepted_on": corrected_day.isoformat(), "reason": "MOFCOM's letter"}
        casework.act(session, stored, who, "correct_acceptance_date", params, stored.version)
        session.commit()
    engine.dispose()
    after = view(review, officials, "cn_officer", case)
    assert after["deadlines"]["statutory_due"] > before, "the statutory date follows"
    entry = next(e for e in after["history"] if e["action"] == "correct_acceptance_date")
    assert entry["actor"]["id"] == officials["cn_supervisor"]["id"]
    assert entry["payload"] == {
        "accepted_on": corrected_day.isoformat(),
        "reason": "MOFCOM's letter",
        "previous_accepted_on": today.isoformat(),
    }


class _Fixed:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


# --- the joint meeting -------------------------------------------------------------------------


def test_leaving_joint_review_records_the_meeting_both_sides_then_see(
    intake: ServiceProcess, review: ServiceProcess, officials: Officials, company_a: Any
) -> None:
    case = in_cn_review(intake, review, officials, company_a)
    cn_supervisor = token(officials, "cn_supervisor")
    escalated = act(review, cn_supervisor, case, "escalate", reason="no progress")
    assert escalated.status_code == 200 and escalated.json()["state"] == "joint_review"
    today = date.today()
    eu_id, cn_id = officials["eu_supervisor"]["id"], officials["cn_supervisor"]["id"]
    meeting = {
        "held_on": today.isoformat(),
        "participants": [eu_id, cn_id],
        "outcome": "MOFCOM to decide within 10 days",
    }
    refusals = {
        "none": {},
        "future": {"meeting": meeting | {"held_on": (today + timedelta(1)).isoformat()}},
        "before escalation": {"meeting": meeting | {"held_on": (today - timedelta(1)).isoformat()}},
        "one side": {"meeting": meeting | {"participants": [cn_id, officials["cn_officer"]["id"]]}},
        "stranger": {"meeting": meeting | {"participants": [eu_id, str(uuid.uuid4())]}},
    }
    for why, params in refusals.items():
        r = act(review, cn_supervisor, case, "return_to_review", **params)
        assert r.status_code == 422, (why, r.text)
        assert all(e["field"].startswith("meeting") for e in r.json()["errors"]), why
    assert view(review, officials, "cn_officer", case)["state"] == "joint_review"
    back = act(review, cn_supervisor, case, "return_to_review", meeting=meeting)
    assert back.status_code == 200, back.text
    for who in ("eu_officer", "cn_officer"):
        (shown,) = view(review, officials, who, case)["joint_meetings"]
        assert shown["held_on"] == today.isoformat() and shown["action"] == "return_to_review"
        assert shown["outcome"] == meeting["outcome"]
        assert {(p["id"], p["side"]) for p in shown["participants"]} == {
            (eu_id, "EU"),
            (cn_id, "CN"),
        }
        assert {p["name"] for p in shown["participants"]} == {"EU supervisor", "CN supervisor"}
    entry = back.json()["history"][-1]
    assert entry["action"] == "return_to_review" and entry["payload"]["meeting"] == meeting
