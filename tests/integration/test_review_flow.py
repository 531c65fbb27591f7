"""Intake and review as real processes: from submission to licence, and what each side sees."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from datetime import date
from typing import Any

import httpx
from sqlalchemy import text

from services.review.domain.protocol import Protocol
from shared.config import CommonSettings
from shared.db import make_engine
from tests.integration.conftest import application
from tests.people import console as signed_in_console
from tests.support import ROOT, Infra, ServiceProcess, wait_until

HIDDEN_FROM_CN = (
    "urgency",
    "stock_days",
    "production_stop_date",
    "jobs_at_risk",
    "value_eur",
    "score",
    "fired",
    "contract_value_eur",
    "consignee",
    "eori",
)


def token(officials: dict[str, dict[str, Any]], who: str) -> str:
    return str(officials[who]["token"])


def submit(intake: ServiceProcess, company: dict[str, Any], **changes: Any) -> dict[str, Any]:
    with intake.client(company["api_key"]) as c:
        r = c.post("/v1/applications", json=application(**changes))
        assert r.status_code == 201, r.text
        return dict(r.json())


def case_of(review: ServiceProcess, officials: dict[str, Any], reference: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        with review.client(token(officials, "eu_officer")) as c:
            # By its reference: the shared deployment holds hundreds of cases by now, and a
            # new one is not always on the queue's first page.
            items = c.get("/v1/cases", params={"q": reference, "limit": 200}).json()["items"]
            hit = [i for i in items if i["reference"] == reference]
            return c.get(f"/v1/cases/{hit[0]['id']}").json() if hit else None

    return wait_until(find, timeout=20, what=f"case {reference} opened in review")


def act(
    review: ServiceProcess, credential: str, case: dict[str, Any], action: str, **params: Any
) -> httpx.Response:
    with review.client(credential) as c:
        current = c.get(f"/v1/cases/{case['id']}").json()
        return c.post(
            f"/v1/cases/{case['id']}/actions",
            json={"action": action, **params},
            headers={"If-Match": str(current["version"])},
        )


def countersign(
    review: ServiceProcess, credential: str, case: dict[str, Any], proposal_id: str
) -> httpx.Response:
    with review.client(credential) as c:
        current = c.get(f"/v1/cases/{case['id']}").json()
        return c.post(
            f"/v1/cases/{case['id']}/proposals/{proposal_id}/countersign",
            headers={"If-Match": str(current["version"])},
        )


def decide_with_four_eyes(
    review: ServiceProcess,
    officials: dict[str, Any],
    case: dict[str, Any],
    action: str,
    proposer: str | None = None,
    **params: Any,
) -> httpx.Response:
    """A decline or a refusal as the protocol has it: proposed by an officer of the side
    (`proposer`, by default `<side>_officer`), countersigned by that side's supervisor. The
    proposal's answer is checked; the countersignature's is returned."""
    side = "eu" if action == "decline" else "cn"
    proposed = act(review, token(officials, proposer or f"{side}_officer"), case, action, **params)
    assert proposed.status_code == 200, proposed.text
    (proposal,) = proposed.json()["proposals"]
    assert proposal["action"] == action and proposal["status"] == "pending"
    return countersign(review, token(officials, f"{side}_supervisor"), case, proposal["id"])


def applicant_view(intake: ServiceProcess, company: dict[str, Any], app_id: str) -> dict[str, Any]:
    with intake.client(company["api_key"]) as c:
        return dict(c.get(f"/v1/applications/{app_id}").json())


def wait_status(
    intake: ServiceProcess, company: dict[str, Any], app_id: str, status: str
) -> dict[str, Any]:
    return wait_until(
        lambda: (v := applicant_view(intake, company, app_id))["status"] == status and v,
        timeout=20,
        what=f"applicant sees {status}",
    )


def test_a_case_goes_from_submission_to_licence_and_the_applicant_sees_each_step(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
) -> None:
    app = submit(intake, company_a)
    case = case_of(review, officials, app["reference"])
    assert case["state"] == "eu_screening"
    assert case["priority"]["tier"] in ("P1", "P2", "P3")
    assert case["priority"]["fired"], "the EU sees why the case got its tier"
    assert all(f["explanation"] for f in case["priority"]["fired"])
    view = wait_status(intake, company_a, app["id"], "eu_screening")
    assert view["priority_tier"] == case["priority"]["tier"]
    assert view["expected_decision_date"] is not None

    r = act(
        review,
        token(officials, "eu_officer"),
        case,
        "request_information",
        question="Please upload the end-user statement.",
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "awaiting_applicant"
    view = wait_status(intake, company_a, app["id"], "awaiting_applicant")
    assert view["point_of_contact"]["name"] == "EU officer"
    request_id = view["information_requests"][0]["id"]
    with intake.client(company_a["api_key"]) as c:
        doc = c.post(
            f"/v1/applications/{app['id']}/documents",
            files={"file": ("statement.pdf", b"%PDF-1.4\n%%EOF\n")},
            data={"kind": "end_user_statement", "shareable": "false"},
        ).json()
        r = c.post(
            f"/v1/applications/{app['id']}/information-requests/{request_id}/answer",
            json={"answer": "Uploaded.", "document_ids": [doc["id"]]},
        )
        assert r.status_code == 200, r.text

    def back_in_screening() -> dict[str, Any] | None:
        with review.client(token(officials, "eu_officer")) as c:
            current = c.get(f"/v1/cases/{case['id']}").json()
            return current if current["state"] == "eu_screening" else None

    current = wait_until(back_in_screening, timeout=20, what="case returns after the answer")
    assert current["information_requests"][0]["status"] == "answered"
    assert [d["id"] for d in current["documents"]] == [doc["id"]]

    assert act(review, token(officials, "eu_officer"), case, "admit").status_code == 200
    with review.client(token(officials, "eu_supervisor")) as c:
        r = c.post("/v1/priority-lists", json={"case_ids": [case["id"]]})
    assert r.status_code == 201, r.text
    listed = r.json()
    assert listed["number"] >= 1 and listed["cases"][0]["case_id"] == case["id"]
    wait_status(intake, company_a, app["id"], "cn_review")

    cn = token(officials, "cn_officer")
    r = act(review, cn, case, "acknowledge", accepted_on=date.today().isoformat())
    assert r.status_code == 200, r.text
    assert r.json()["deadlines"]["stage_due"] is not None
    number = f"LIC-{app['reference']}"
    r = act(
        review,
        cn,
        case,
        "approve",
        licence={
            "type": "three_month",
            "number": number,
            "valid_from": date.today().isoformat(),
            "lines": [{"line": 1, "approved_quantity_kg": 100}],
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved"

    view = wait_until(
        lambda: (v := applicant_view(intake, company_a, app["id"]))["licence"] and v, timeout=20
    )
    assert view["status"] == "approved"
    assert view["licence"]["number"] == number
    assert view["licence"]["lines"][0]["approved_quantity_kg"] == 100
    timeline = [t["type"] for t in view["timeline"]]
    for step in (
        "application.received",
        "case.opened",
        "application.information_requested",
        "application.status_changed",
        "application.approved",
        "licence.issued",
    ):
        assert step in timeline, (step, timeline)

    with review.client(cn) as c:
        too_much = c.post(
            f"/v1/licences/{number}/shipments",
            json={
                "shipped_on": date.today().isoformat(),
                "lines": [{"line": 1, "quantity_kg": 150}],
            },
        )
        ok = c.post(
            f"/v1/licences/{number}/shipments",
            json={
                "shipped_on": date.today().isoformat(),
                "lines": [{"line": 1, "quantity_kg": 60}],
            },
        )
        rest = c.post(
            f"/v1/licences/{number}/shipments",
            json={
                "shipped_on": date.today().isoformat(),
                "lines": [{"line": 1, "quantity_kg": 41}],
            },
        )
        licence = c.get(f"/v1/licences/{number}").json()
    assert too_much.status_code == 409
    assert ok.status_code == 201, ok.text
    assert rest.status_code == 409
    assert float(licence["remaining_kg"]["1"]) == 40
    with review.client(cn) as c:
        assert c.post(f"/v1/licences/{number}/revoke", json={"reason": "x"}).status_code == 403
    with review.client(token(officials, "cn_supervisor")) as c:
        revoked = c.post(f"/v1/licences/{number}/revoke", json={"reason": "diversion found"})
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    with review.client(cn) as c:
        after = c.post(
            f"/v1/licences/{number}/shipments",
            json={"shipped_on": date.today().isoformat(), "lines": [{"line": 1, "quantity_kg": 1}]},
        )
    assert after.status_code == 409


def test_the_chinese_side_never_receives_what_the_protocol_hides(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
) -> None:
    app = submit(intake, company_a)
    case = case_of(review, officials, app["reference"])
    with review.client(token(officials, "cn_officer")) as c:
        assert c.get(f"/v1/cases/{case['id']}").status_code == 404, "not sent to China yet"
    eu_officer = token(officials, "eu_officer")
    with review.client(eu_officer) as c:
        c.post(
            f"/v1/cases/{case['id']}/notes", json={"text": "EU-only remark", "visibility": "side"}
        )
        c.post(f"/v1/cases/{case['id']}/notes", json={"text": "for both", "visibility": "joint"})
    assert act(review, eu_officer, case, "admit").status_code == 200
    with review.client(token(officials, "eu_supervisor")) as c:
        assert c.post("/v1/priority-lists", json={"case_ids": [case["id"]]}).status_code == 201
    with review.client(token(officials, "cn_officer")) as c:
        bodies = [
            c.get(f"/v1/cases/{case['id']}").text,
            c.get("/v1/cases", params={"limit": 200}).text,
            c.get(f"/v1/cases/{case['id']}/audit").text,
            c.get("/v1/priority-lists/1").text,
        ]
        cn_notes = [n["text"] for n in c.get(f"/v1/cases/{case['id']}").json()["notes"]]
    for body in bodies:
        for key in HIDDEN_FROM_CN:
            assert f'"{key}"' not in body, (key, body[:300])
        assert "EU-only remark" not in body
    assert cn_notes == ["for both"]


def test_wrong_side_role_state_version_and_parameters_are_refused_and_change_nothing(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
) -> None:
    app = submit(intake, company_a)
    case = case_of(review, officials, app["reference"])
    version = case["version"]
    eu = token(officials, "eu_officer")
    assert (
        act(review, token(officials, "eu_supervisor"), case, "approve", licence={}).status_code
        == 403
    )
    assert act(review, eu, case, "escalate", reason="x").status_code == 403
    assert act(review, eu, case, "decline").status_code == 422
    assert act(review, eu, case, "decline", reason="not-a-code").status_code == 422
    assert act(review, eu, case, "teleport").status_code == 422
    with review.client(eu) as c:
        stale = c.post(
            f"/v1/cases/{case['id']}/actions",
            json={"action": "admit"},
            headers={"If-Match": str(version + 5)},
        )
        missing = c.post(f"/v1/cases/{case['id']}/actions", json={"action": "admit"})
        after = c.get(f"/v1/cases/{case['id']}").json()
    assert stale.status_code == 409 and missing.status_code == 428
    assert after["version"] == version and after["state"] == "eu_screening"
    assert act(review, eu, case, "admit").status_code == 200
    wrong_state = act(review, eu, case, "admit")
    assert wrong_state.status_code == 409
    assert wrong_state.headers["content-type"] == "application/problem+json"


def test_of_two_concurrent_actions_exactly_one_wins(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
) -> None:
    app = submit(intake, company_a)
    case = case_of(review, officials, app["reference"])
    results: list[int] = []
    barrier = threading.Barrier(4)

    def admit() -> None:
        with review.client(token(officials, "eu_officer")) as c:
            barrier.wait()
            r = c.post(
                f"/v1/cases/{case['id']}/actions",
                json={"action": "admit"},
                headers={"If-Match": str(case["version"])},
            )
            results.append(r.status_code)

    threads = [threading.Thread(target=admit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409, 409, 409]


def test_withdrawal_at_intake_closes_the_case(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
) -> None:
    app = submit(intake, company_a)
    case = case_of(review, officials, app["reference"])
    with intake.client(company_a["api_key"]) as c:
        assert c.post(f"/v1/applications/{app['id']}/withdraw").status_code == 200

    def withdrawn() -> bool:
        with review.client(token(officials, "eu_officer")) as c:
            return bool(c.get(f"/v1/cases/{case['id']}").json()["state"] == "withdrawn")

    wait_until(withdrawn, timeout=20, what="case withdrawn in review")


def test_changing_one_byte_of_an_audit_entry_is_detected_and_named(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
    infra: Infra,
) -> None:
    app = submit(intake, company_a)
    case = case_of(review, officials, app["reference"])
    assert act(review, token(officials, "eu_officer"), case, "admit").status_code == 200
    with review.client(token(officials, "eu_officer")) as c:
        assert c.get(f"/v1/cases/{case['id']}/audit/verify").json()["ok"] is True
        entries = c.get(f"/v1/cases/{case['id']}/audit").json()["entries"]
    target = entries[0]
    engine = make_engine(CommonSettings(**_settings_env(infra)), "review")
    with engine.begin() as conn:
        payload = conn.execute(
            text("SELECT payload FROM audit_entries WHERE id = :id"), {"id": target["id"]}
        ).scalar_one()
        raw = payload if isinstance(payload, str) else json.dumps(payload)
        tampered = raw.replace('"tier": "P', '"tier": "Q', 1).replace('"tier":"P', '"tier":"Q', 1)
        assert tampered != raw
        conn.execute(
            text("UPDATE audit_entries SET payload = :p WHERE id = :id"),
            {"p": tampered, "id": target["id"]},
        )
    engine.dispose()
    with review.client(token(officials, "eu_officer")) as c:
        result = c.get(f"/v1/cases/{case['id']}/audit/verify").json()
    assert result["ok"] is False
    assert result["entry_id"] == target["id"]
    cli = subprocess.run(
        [sys.executable, "-m", "reechannel.cli", "audit", "verify", "--case", case["id"], "--json"],
        env=infra.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 1, cli.stderr
    assert json.loads(cli.stdout)["failures"][0]["entry_id"] == target["id"]


def _settings_env(infra: Infra) -> dict[str, Any]:
    env = infra.env()
    keys = ("DATABASE_URL", "REE_SCHEMA_PREFIX", "REE_DATA_DIR")
    return {k: env[k] for k in keys if k in env}


def test_the_console_queue_counts_what_the_api_counts(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
) -> None:
    """The console's totals come from case_counts (no COUNT over the table): same figures."""
    app = submit(intake, company_a)
    case_of(review, officials, app["reference"])
    credential = token(officials, "eu_officer")
    protocol = Protocol.load()
    with review.client(credential) as api:

        def api_total(**params: Any) -> int:
            return int(api.get("/v1/cases", params={"limit": 1, **params}).json()["total"])

        expected = {
            "all": api_total(),
            "eu_screening": api_total(state="eu_screening"),
            "P1": api_total(tier="P1"),
            "open": sum(api_total(state=s) for s in protocol.states if not protocol.is_terminal(s)),
        }
    with signed_in_console(review.url, officials["eu_officer"]) as console:

        def shown(**params: str) -> int:
            page = console.get("/", params=params)
            assert page.status_code == 200, page.text
            found = re.search(r">\s*(\d+) cases?\b", page.text)
            assert found, page.text[:2000]
            return int(found.group(1))

        assert shown(show="all") == expected["all"]
        assert shown(show="all", state="eu_screening") == expected["eu_screening"]
        assert shown(show="all", tier="P1") == expected["P1"]
        assert shown() == expected["open"]  # the default: open cases only
        assert shown(show="all", q=app["reference"]) == 1
    assert expected["all"] >= 1 and expected["open"] >= 1
