"""Deleting documents (red-team finding F16): over real HTTP, streams and the review service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.integration.conftest import application, new_company
from tests.integration.test_review_flow import act, case_of, token
from tests.support import Infra, ServiceProcess, wait_until

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
OTHER_PDF = b"%PDF-1.4\n2 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def upload(c: httpx.Client, app_id: str, content: bytes = PDF, shareable: bool = True) -> str:
    r = c.post(
        f"/v1/applications/{app_id}/documents",
        files={"file": ("statement.pdf", content)},
        data={"kind": "end_user_statement", "shareable": "true" if shareable else "false"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def stored(infra: Infra, sha256: str) -> Path:
    return infra.data_dir / "documents" / sha256[:2] / sha256


def intake_events(infra: Infra, app_id: str, event_type: str) -> list[dict[str, Any]]:
    entries = infra.redis().xrange(infra.stream("intake.events"))
    return [
        json.loads(f["data"])
        for _id, f in entries
        if f["subject"] == app_id and f["type"] == event_type
    ]


def test_a_deleted_document_is_gone_from_the_view_the_disk_and_the_stream(
    intake: ServiceProcess, company_a: dict[str, Any], infra: Infra
) -> None:
    with intake.client(company_a["api_key"]) as c:
        app_id = c.post("/v1/applications", json=application()).json()["id"]
        doc_id = upload(c, app_id, OTHER_PDF)
        sha256 = c.get(f"/v1/applications/{app_id}").json()["documents"][0]["sha256"]
        assert stored(infra, sha256).exists()
        deleted = c.delete(f"/v1/applications/{app_id}/documents/{doc_id}")
        view = c.get(f"/v1/applications/{app_id}").json()
        download = c.get(f"/v1/applications/{app_id}/documents/{doc_id}")
        again = c.delete(f"/v1/applications/{app_id}/documents/{doc_id}")
    assert deleted.status_code == 204, deleted.text
    assert view["documents"] == []
    assert view["timeline"][-1]["type"] == "application.document_deleted"
    assert download.status_code == 404
    assert again.status_code == 404
    assert again.headers["content-type"] == "application/problem+json"
    assert not stored(infra, sha256).exists()
    events = wait_until(
        lambda: intake_events(infra, app_id, "application.document_deleted"),
        what="application.document_deleted on the stream",
    )
    assert [e["document_id"] for e in events] == [doc_id]
    assert events[0]["company_id"] == company_a["id"]


def test_bytes_shared_by_two_documents_stay_until_the_last_is_deleted(
    intake: ServiceProcess, company_a: dict[str, Any], infra: Infra
) -> None:
    content = b"shared bytes of two documents " + infra.prefix.encode()
    with intake.client(company_a["api_key"]) as c:
        first_app = c.post("/v1/applications", json=application()).json()["id"]
        second_app = c.post("/v1/applications", json=application()).json()["id"]
        first = upload(c, first_app, content)
        second = upload(c, second_app, content)
        sha256 = c.get(f"/v1/applications/{first_app}").json()["documents"][0]["sha256"]
        assert c.delete(f"/v1/applications/{first_app}/documents/{first}").status_code == 204
        kept = c.get(f"/v1/applications/{second_app}/documents/{second}")
        assert kept.status_code == 200 and kept.content == content
        assert stored(infra, sha256).exists()
        assert c.delete(f"/v1/applications/{second_app}/documents/{second}").status_code == 204
    assert not stored(infra, sha256).exists()


def test_deleting_a_document_frees_the_companys_storage_quota(infra: Infra) -> None:
    company = new_company(infra, "Quota GmbH")
    small = ServiceProcess("intake", infra.env(REE_UPLOAD_QUOTA_BYTES=str(len(PDF)))).start()
    try:
        with small.client(company["api_key"]) as c:
            app_id = c.post("/v1/applications", json=application()).json()["id"]
            doc_id = upload(c, app_id)
            full = c.post(
                f"/v1/applications/{app_id}/documents", files={"file": ("b.pdf", OTHER_PDF)}
            )
            assert c.delete(f"/v1/applications/{app_id}/documents/{doc_id}").status_code == 204
            room_again = c.post(
                f"/v1/applications/{app_id}/documents", files={"file": ("b.pdf", OTHER_PDF)}
            )
    finally:
        small.stop()
    assert full.status_code == 413
    assert full.json()["type"].endswith("/storage-quota")
    assert room_again.status_code == 201, room_again.text


def test_another_companys_document_is_404_and_stays(
    intake: ServiceProcess, company_a: dict[str, Any], company_b: dict[str, Any]
) -> None:
    with intake.client(company_a["api_key"]) as c:
        app_id = c.post("/v1/applications", json=application()).json()["id"]
        doc_id = upload(c, app_id)
    with intake.client(company_b["api_key"]) as c:
        r = c.delete(f"/v1/applications/{app_id}/documents/{doc_id}")
        own_app = c.post("/v1/applications", json=application()).json()["id"]
        wrong_pair = c.delete(f"/v1/applications/{own_app}/documents/{doc_id}")
    assert r.status_code == 404
    assert r.json()["detail"] == "No such document."
    assert wrong_pair.status_code == 404
    with intake.client(company_a["api_key"]) as c:
        documents = c.get(f"/v1/applications/{app_id}").json()["documents"]
    assert [d["id"] for d in documents] == [doc_id]


def test_documents_of_a_withdrawn_application_are_kept_with_409(
    intake: ServiceProcess, company_a: dict[str, Any], infra: Infra
) -> None:
    with intake.client(company_a["api_key"]) as c:
        app_id = c.post("/v1/applications", json=application()).json()["id"]
        doc_id = upload(c, app_id)
        assert c.post(f"/v1/applications/{app_id}/withdraw").status_code == 200
        r = c.delete(f"/v1/applications/{app_id}/documents/{doc_id}")
        documents = c.get(f"/v1/applications/{app_id}").json()["documents"]
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert "withdrawn" in r.json()["detail"]
    assert [d["id"] for d in documents] == [doc_id]
    wait_until(lambda: intake_events(infra, app_id, "application.withdrawn"), what="withdrawn")
    assert intake_events(infra, app_id, "application.document_deleted") == []


def _documents_seen(review: ServiceProcess, credential: str, case_id: str) -> list[str]:
    with review.client(credential) as c:
        return [d["id"] for d in c.get(f"/v1/cases/{case_id}").json()["documents"]]


def test_review_drops_a_deleted_document_and_an_answered_one_is_kept(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
) -> None:
    eu, cn = token(officials, "eu_officer"), token(officials, "cn_officer")
    with intake.client(company_a["api_key"]) as c:
        app = c.post("/v1/applications", json=application()).json()
    case = case_of(review, officials, app["reference"])
    asked = act(review, eu, case, "request_information", question="The end-user statement?")
    assert asked.status_code == 200, asked.text

    def open_request() -> str | None:
        with intake.client(company_a["api_key"]) as c:
            requests = c.get(f"/v1/applications/{app['id']}").json()["information_requests"]
        return requests[0]["id"] if requests else None

    request_id = wait_until(open_request, timeout=20, what="request reaches intake")
    with intake.client(company_a["api_key"]) as c:
        answered = upload(c, app["id"], PDF)
        spare = upload(c, app["id"], OTHER_PDF)
        r = c.post(
            f"/v1/applications/{app['id']}/information-requests/{request_id}/answer",
            json={"answer": "Attached.", "document_ids": [answered]},
        )
        assert r.status_code == 200, r.text
        referenced = c.delete(f"/v1/applications/{app['id']}/documents/{answered}")
    assert referenced.status_code == 409
    assert "answer" in referenced.json()["detail"]

    wait_until(
        lambda: sorted(_documents_seen(review, eu, case["id"])) == sorted([answered, spare]),
        timeout=20,
        what="both documents in review",
    )
    wait_until(
        lambda: case_of(review, officials, app["reference"])["state"] == "eu_screening",
        timeout=20,
        what="case back in screening after the answer",
    )
    assert act(review, eu, case, "admit").status_code == 200
    with review.client(token(officials, "eu_supervisor")) as c:
        assert c.post("/v1/priority-lists", json={"case_ids": [case["id"]]}).status_code == 201
    assert sorted(_documents_seen(review, cn, case["id"])) == sorted([answered, spare])

    with intake.client(company_a["api_key"]) as c:
        assert c.delete(f"/v1/applications/{app['id']}/documents/{spare}").status_code == 204
    wait_until(
        lambda: _documents_seen(review, eu, case["id"]) == [answered],
        timeout=20,
        what="EU case view without the deleted document",
    )
    assert _documents_seen(review, cn, case["id"]) == [answered]
