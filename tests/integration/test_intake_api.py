"""Intake over real HTTP, with real Redis streams and a real database."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.integration.conftest import application
from tests.support import Infra, ServiceProcess, operator, wait_until

STREAM = "intake.events"


def submitted_events(infra: Infra, application_id: str | None = None) -> list[dict[str, Any]]:
    entries = infra.redis().xrange(infra.stream(STREAM))
    events = [fields for _id, fields in entries]
    if application_id:
        events = [e for e in events if e["subject"] == application_id]
    return events


def count_own(intake: ServiceProcess, key: str) -> int:
    with intake.client(key) as c:
        total, cursor = 0, None
        while True:
            page = c.get("/v1/applications", params={"limit": 200, "cursor": cursor}).json()
            total += len(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return total


def test_submit_returns_201_and_emits_a_plain_json_cloudevent(
    intake: ServiceProcess, company_a: dict[str, Any], infra: Infra
) -> None:
    with intake.client(company_a["api_key"]) as c:
        r = c.post("/v1/applications", json=application())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["reference"].startswith("REC-")
    assert body["status"] == "submitted"
    assert r.headers["location"] == f"/v1/applications/{body['id']}"
    assert body["application"]["goods"][0]["hs_code"] == "280530"

    events = wait_until(lambda: submitted_events(infra, body["id"]), what="event on stream")
    event = events[0]
    assert event["specversion"] == "1.0"
    assert event["type"] == "application.submitted"
    assert event["source"] == "reechannel/intake"
    assert event["datacontenttype"] == "application/json"
    data = json.loads(event["data"])
    assert data["reference"] == body["reference"]
    assert data["company_id"] == company_a["id"]
    assert data["application"]["urgency"]["stock_days"] == 12


def test_same_idempotency_key_and_body_makes_one_application(
    intake: ServiceProcess, infra: Infra
) -> None:
    from tests.integration.conftest import new_company

    company = new_company(infra)
    key = str(uuid.uuid4())
    with intake.client(company["api_key"]) as c:
        body = application()
        first = c.post("/v1/applications", json=body, headers={"Idempotency-Key": key})
        second = c.post("/v1/applications", json=body, headers={"Idempotency-Key": key})
        other = c.post(
            "/v1/applications",
            json={**body, "licence_type": "annual"},
            headers={"Idempotency-Key": key},
        )
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert count_own(intake, company["api_key"]) == 1
    wait_until(lambda: submitted_events(infra, first.json()["id"]))
    assert len(submitted_events(infra, first.json()["id"])) == 1


def _broken(path: str, value: Any) -> dict[str, Any]:
    body = application()
    target: Any = body
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if value is _DELETE:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return body


_DELETE = object()

INVALID_FIELDS = [
    ("mofcom_application_number", ""),
    ("mofcom_application_number", _DELETE),
    ("licence_type", "forever"),
    ("exporter.uscc", "123"),
    ("exporter.name", ""),
    ("consignee.country", "Germany"),
    ("end_user.country", "de"),
    ("end_use.category", "toys"),
    ("end_use.description", ""),
    ("goods", []),
    ("goods.0.element", "Fe"),
    ("goods.0.form", "powder"),
    ("goods.0.hs_code", "12.34"),
    ("goods.0.hs_code", "28053012345"),
    ("goods.0.quantity_kg", 0),
    ("goods.0.quantity_kg", -5),
    ("goods.0.value_eur", -1),
    ("urgency.stock_days", -1),
    ("urgency.production_stop_date", "2026-13-45"),
    ("urgency.jobs_at_risk", "many"),
    ("sme", "perhaps"),
    ("unexpected_field", "x"),
]


@pytest.mark.parametrize(("path", "value"), INVALID_FIELDS)
def test_each_invalid_field_is_refused_with_422_and_nothing_stored(
    intake: ServiceProcess, infra: Infra, path: str, value: Any, company_a: dict[str, Any]
) -> None:
    before_events = len(submitted_events(infra))
    before = count_own(intake, company_a["api_key"])
    with intake.client(company_a["api_key"]) as c:
        r = c.post("/v1/applications", json=_broken(path, value))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == 422
    fields = [e["field"] for e in problem["errors"]]
    assert any(f == path or f.startswith(path + ".") for f in fields), fields
    assert count_own(intake, company_a["api_key"]) == before
    assert len(submitted_events(infra)) == before_events


def test_neodymium_outside_a_magnet_is_refused(
    intake: ServiceProcess, company_a: dict[str, Any]
) -> None:
    goods = [{"element": "Nd", "form": "oxide", "hs_code": "284690", "quantity_kg": 10}]
    with intake.client(company_a["api_key"]) as c:
        r = c.post("/v1/applications", json=application(goods=goods))
    assert r.status_code == 422
    [error] = r.json()["errors"]
    # The list of controlled goods says so (shared/controlled_goods.yaml), not the code.
    assert error == {
        "field": "goods.0.form",
        "message": "Nd is controlled only in these forms: magnet",
    }


def test_malformed_json_and_oversize_bodies_are_refused(
    intake: ServiceProcess, company_a: dict[str, Any]
) -> None:
    with intake.client(company_a["api_key"]) as c:
        malformed = c.post(
            "/v1/applications",
            content=b'{"licence_type": ',
            headers={"content-type": "application/json"},
        )
        huge = application()
        huge["end_use"]["description"] = "x" * 2_000_000
        oversize = c.post("/v1/applications", json=huge)
    assert malformed.status_code == 422
    assert "malformed JSON" in malformed.json()["errors"][0]["message"]
    assert oversize.status_code == 413
    assert oversize.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("content", "content_type", "field"),
    [
        (b"", "application/json", "body"),
        (json.dumps(application()).encode(), "text/plain", "body"),
        (json.dumps(application()).encode(), None, "body"),
        (b"[1, 2]", "application/json", "body"),
        (b'{"licence_type": "annual"}', "application/json", "mofcom_application_number"),
    ],
    ids=["empty", "text-plain", "no-content-type", "not-an-object", "missing-fields"],
)
def test_a_body_that_is_no_application_is_refused_with_422(
    intake: ServiceProcess,
    infra: Infra,
    company_a: dict[str, Any],
    content: bytes,
    content_type: str | None,
    field: str,
) -> None:
    before = count_own(intake, company_a["api_key"])
    headers = {"content-type": content_type} if content_type else {}
    with intake.client(company_a["api_key"]) as c:
        r = c.post("/v1/applications", content=content, headers=headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in r.json()["errors"]], r.text
    assert count_own(intake, company_a["api_key"]) == before


def test_an_invalid_submission_is_refused_only_after_its_credential(
    intake: ServiceProcess, infra: Infra
) -> None:
    broken = {"licence_type": "forever"}
    with intake.client() as c:
        assert c.post("/v1/applications", json=broken).status_code == 401
        malformed = c.post(
            "/v1/applications", content=b"{", headers={"content-type": "application/json"}
        )
        assert malformed.status_code == 401
    with intake.client("ree_ak_not-a-real-key") as c:
        r = c.post("/v1/applications", json=broken, headers={"Idempotency-Key": ""})
    assert r.status_code == 401
    assert "errors" not in r.json()
    official = operator(
        infra, "official", "create", "--name", "Ida", "--side", "EU", "--role", "officer"
    )
    with intake.client(official["token"]) as c:
        assert c.post("/v1/applications", json=broken).status_code == 403
        assert c.post("/v1/applications", json=application()).status_code == 403


def test_no_or_bad_credential_is_401(intake: ServiceProcess) -> None:
    with intake.client() as c:
        assert c.get("/v1/applications").status_code == 401
        assert c.post("/v1/applications", json=application()).status_code == 401
    with intake.client("ree_ak_not-a-real-key") as c:
        r = c.get("/v1/applications")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_revoked_key_stops_working_at_once(intake: ServiceProcess, infra: Infra) -> None:
    from tests.integration.conftest import new_company

    company = new_company(infra)
    with intake.client(company["api_key"]) as c:
        assert c.get("/v1/applications").status_code == 200
        operator(infra, "credential", "revoke", company["id"])
        assert c.get("/v1/applications").status_code == 401


def test_official_token_cannot_use_applicant_routes(intake: ServiceProcess, infra: Infra) -> None:
    official = operator(
        infra, "official", "create", "--name", "Eva", "--side", "EU", "--role", "officer"
    )
    with intake.client(official["token"]) as c:
        assert c.get("/v1/applications").status_code == 403


def test_another_companys_application_is_404_everywhere(
    intake: ServiceProcess, company_a: dict[str, Any], company_b: dict[str, Any]
) -> None:
    with intake.client(company_a["api_key"]) as a:
        app_id = a.post("/v1/applications", json=application()).json()["id"]
    with intake.client(company_b["api_key"]) as b:
        assert b.get(f"/v1/applications/{app_id}").status_code == 404
        assert b.post(f"/v1/applications/{app_id}/withdraw").status_code == 404
        assert (
            b.post(
                f"/v1/applications/{app_id}/documents", files={"file": ("a.txt", b"hello")}
            ).status_code
            == 404
        )
        assert (
            b.post(
                f"/v1/applications/{app_id}/information-requests/x/answer", json={"answer": "a"}
            ).status_code
            == 404
        )
        ids = [i["id"] for i in b.get("/v1/applications").json()["items"]]
    assert app_id not in ids


def test_list_is_paginated_newest_first_and_filters_by_status(
    intake: ServiceProcess, infra: Infra
) -> None:
    from tests.integration.conftest import new_company

    company = new_company(infra)
    with intake.client(company["api_key"]) as c:
        ids = [c.post("/v1/applications", json=application()).json()["id"] for _ in range(5)]
        c.post(f"/v1/applications/{ids[0]}/withdraw")
        first = c.get("/v1/applications", params={"limit": 2}).json()
        second = c.get(
            "/v1/applications", params={"limit": 2, "cursor": first["next_cursor"]}
        ).json()
        third = c.get(
            "/v1/applications", params={"limit": 2, "cursor": second["next_cursor"]}
        ).json()
        withdrawn = c.get("/v1/applications", params={"status": "withdrawn"}).json()
        bad_limit = c.get("/v1/applications", params={"limit": 1000})
        bad_status = c.get("/v1/applications", params={"status": "nonsense"})
    listed = [i["id"] for page in (first, second, third) for i in page["items"]]
    assert listed == list(reversed(ids))
    assert third["next_cursor"] is None
    assert [i["id"] for i in withdrawn["items"]] == [ids[0]]
    assert bad_limit.status_code == 422
    assert bad_status.status_code == 422


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_documents_are_stored_by_sha256_and_type_is_sniffed(
    intake: ServiceProcess, company_a: dict[str, Any], infra: Infra
) -> None:
    import hashlib

    with intake.client(company_a["api_key"]) as c:
        app_id = c.post("/v1/applications", json=application()).json()["id"]
        ok = c.post(
            f"/v1/applications/{app_id}/documents",
            files={"file": ("../../etc/passwd.pdf", PDF, "image/png")},
            data={"kind": "end_user_statement", "shareable": "true"},
        )
        exe = c.post(
            f"/v1/applications/{app_id}/documents",
            files={"file": ("report.pdf", b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 100)},
        )
        bad_kind = c.post(
            f"/v1/applications/{app_id}/documents",
            files={"file": ("a.pdf", PDF)},
            data={"kind": "selfie"},
        )
        empty = c.post(f"/v1/applications/{app_id}/documents", files={"file": ("a.txt", b"")})
        view = c.get(f"/v1/applications/{app_id}").json()
        download = c.get(f"/v1/applications/{app_id}/documents/{ok.json()['id']}")
    assert ok.status_code == 201, ok.text
    doc = ok.json()
    assert doc["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert doc["content_type"] == "application/pdf"
    assert doc["filename"] == "passwd.pdf"
    assert doc["shareable"] is True
    assert (infra.data_dir / "documents" / doc["sha256"][:2] / doc["sha256"]).read_bytes() == PDF
    assert exe.status_code == 415
    assert bad_kind.status_code == 422
    assert empty.status_code == 422
    assert [d["id"] for d in view["documents"]] == [doc["id"]]
    assert download.status_code == 200 and download.content == PDF
    events = wait_until(
        lambda: [
            e for e in submitted_events(infra, app_id) if e["type"] == "application.document_added"
        ]
    )
    assert json.loads(events[0]["data"])["document"]["sha256"] == doc["sha256"]


def test_oversize_upload_is_413(
    intake: ServiceProcess, infra: Infra, company_a: dict[str, Any]
) -> None:
    small = ServiceProcess("intake", infra.env(REE_MAX_UPLOAD_BYTES="1000")).start()
    try:
        with small.client(company_a["api_key"]) as c:
            app_id = c.post("/v1/applications", json=application()).json()["id"]
            r = c.post(
                f"/v1/applications/{app_id}/documents",
                files={"file": ("big.txt", b"a" * 5000)},
            )
        assert r.status_code == 413
    finally:
        small.stop()


def test_withdraw_once_then_conflict(
    intake: ServiceProcess, company_a: dict[str, Any], infra: Infra
) -> None:
    with intake.client(company_a["api_key"]) as c:
        app_id = c.post("/v1/applications", json=application()).json()["id"]
        first = c.post(f"/v1/applications/{app_id}/withdraw", json={"reason": "order cancelled"})
        again = c.post(f"/v1/applications/{app_id}/withdraw")
    assert first.status_code == 200
    assert first.json()["status"] == "withdrawn"
    assert again.status_code == 409
    events = wait_until(
        lambda: [e for e in submitted_events(infra, app_id) if e["type"] == "application.withdrawn"]
    )
    assert json.loads(events[0]["data"])["reason"] == "order cancelled"


def test_openapi_and_docs_are_served(intake: ServiceProcess) -> None:
    with intake.client() as c:
        spec = c.get("/openapi.json").json()
        assert c.get("/docs").status_code == 200
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").json()["checks"] == {
            "database": True,
            "redis": True,
            "migrated": True,
        }
        assert "reechannel_http_request_seconds" in c.get("/metrics").text
    assert "/v1/applications/{application_id}/withdraw" in spec["paths"]
