"""Officials open a case's documents: intake writes the bytes into the document store, review
hands them out from it (real processes, HTTP, Redis and the database; the store in a folder of
its own, REE_DOCUMENT_DIR)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import application
from tests.integration.test_review_flow import act, case_of, token
from tests.people import console as signed_in_console
from tests.support import Infra, ServiceProcess, wait_until

PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


@dataclass
class Deployment:
    intake: ServiceProcess
    review: ServiceProcess
    folder: Path


@pytest.fixture(scope="module")
def deployment(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("document-store")
    env = infra.env(REE_DOCUMENT_DIR=str(folder))
    intake = ServiceProcess("intake", env).start()
    review = ServiceProcess("review", env).start()
    yield Deployment(intake, review, folder)
    review.stop()
    intake.stop()


@dataclass
class Story:
    """An application with a private PDF and a shareable PNG, and its case in review."""

    app: dict[str, Any]
    case: dict[str, Any]
    private: dict[str, Any]
    shared: dict[str, Any]
    private_bytes: bytes
    shared_bytes: bytes


def pdf(tag: str) -> bytes:
    return b"%PDF-1.4\n1 0 obj<<>>endobj\n% " + tag.encode() + b"\ntrailer<<>>\n%%EOF\n"


def png(tag: str) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + tag.encode() * 4 + PNG_END


def upload(
    c: httpx.Client, app_id: str, name: str, content: bytes, shareable: bool
) -> dict[str, Any]:
    r = c.post(
        f"/v1/applications/{app_id}/documents",
        files={"file": (name, content)},
        data={"kind": "contract", "shareable": "true" if shareable else "false"},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def documents_seen(d: Deployment, credential: str, case_id: str) -> list[dict[str, Any]]:
    with d.review.client(credential) as c:
        return list(c.get(f"/v1/cases/{case_id}").json().get("documents", []))


def tell(d: Deployment, officials: dict[str, Any], company: dict[str, Any]) -> Story:
    tag = uuid.uuid4().hex
    private_bytes, shared_bytes = pdf(tag), png(tag)
    with d.intake.client(company["api_key"]) as c:
        app = c.post("/v1/applications", json=application()).json()
        private = upload(c, app["id"], "Vertrag Größe.pdf", private_bytes, shareable=False)
        # A PNG under a PDF's name: typed, and named, by its bytes.
        shared = upload(c, app["id"], "scan.pdf", shared_bytes, shareable=True)
    case = case_of(d.review, officials, app["reference"])
    eu = token(officials, "eu_officer")
    wait_until(
        lambda: len(documents_seen(d, eu, case["id"])) == 2,
        timeout=20,
        what="both documents in review",
    )
    return Story(app, case, private, shared, private_bytes, shared_bytes)


def send_to_china(d: Deployment, officials: dict[str, Any], story: Story) -> None:
    assert act(d.review, token(officials, "eu_officer"), story.case, "admit").status_code == 200
    with d.review.client(token(officials, "eu_supervisor")) as c:
        r = c.post("/v1/priority-lists", json={"case_ids": [story.case["id"]]})
    assert r.status_code == 201, r.text


def href(story: Story, document: dict[str, Any]) -> str:
    return f"/v1/cases/{story.case['id']}/documents/{document['id']}"


def audit(d: Deployment, credential: str, case_id: str) -> list[dict[str, Any]]:
    with d.review.client(credential) as c:
        return list(c.get(f"/v1/cases/{case_id}/audit").json()["entries"])


def downloads(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (e["actor"]["id"], e["payload"]["document_id"])
        for e in entries
        if e["action"] == "document_downloaded"
    ]


def test_intake_writes_where_ree_document_dir_says_and_review_reads_it_from_there(
    deployment: Deployment, infra: Infra, officials: dict[str, Any], company_a: dict[str, Any]
) -> None:
    story = tell(deployment, officials, company_a)
    sha256 = hashlib.sha256(story.private_bytes).hexdigest()
    assert story.private["sha256"] == sha256
    assert (deployment.folder / sha256[:2] / sha256).read_bytes() == story.private_bytes
    assert not (infra.data_dir / "documents" / sha256[:2] / sha256).exists()
    with deployment.review.client(token(officials, "eu_officer")) as c:
        got = c.get(href(story, story.private))
    assert got.status_code == 200, got.text
    assert got.content == story.private_bytes


def test_the_eu_opens_every_document_typed_by_its_bytes_under_a_safe_name(
    deployment: Deployment, officials: dict[str, Any], company_a: dict[str, Any]
) -> None:
    story = tell(deployment, officials, company_a)
    eu = token(officials, "eu_supervisor")
    listed = {d["id"]: d for d in documents_seen(deployment, eu, story.case["id"])}
    assert listed[story.private["id"]]["href"] == href(story, story.private)
    assert listed[story.shared["id"]]["href"] == href(story, story.shared)
    with deployment.review.client(eu) as c:
        private = c.get(href(story, story.private))
        shared = c.get(href(story, story.shared))
    assert private.status_code == 200 and private.content == story.private_bytes
    assert private.headers["content-type"] == "application/pdf"
    assert private.headers["content-disposition"] == (
        "attachment; filename=\"Vertrag Groe.pdf\"; filename*=UTF-8''Vertrag%20Gr%C3%B6%C3%9Fe.pdf"
    )
    assert shared.status_code == 200 and shared.content == story.shared_bytes
    assert shared.headers["content-type"] == "image/png"
    assert shared.headers["content-disposition"] == (
        "attachment; filename=\"scan.png\"; filename*=UTF-8''scan.png"
    )
    for answer in (private, shared):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"


def test_china_opens_only_shareable_documents_of_cases_sent_to_it_and_nothing_else(
    deployment: Deployment, officials: dict[str, Any], company_a: dict[str, Any]
) -> None:
    story = tell(deployment, officials, company_a)
    other = tell(deployment, officials, company_a)
    cn, eu = token(officials, "cn_officer"), token(officials, "eu_officer")
    with deployment.review.client(cn) as c:
        before = c.get(href(story, story.shared))
    send_to_china(deployment, officials, story)
    listed = documents_seen(deployment, cn, story.case["id"])
    assert [(d["id"], d["href"]) for d in listed] == [
        (story.shared["id"], href(story, story.shared))
    ]
    with deployment.review.client(cn) as c:
        shared = c.get(href(story, story.shared))
        refused = [
            before,
            c.get(href(story, story.private)),
            c.get(f"/v1/cases/{story.case['id']}/documents/{uuid.uuid4()}"),
            # Another case's shareable document, under this case and under its own (not sent).
            c.get(f"/v1/cases/{story.case['id']}/documents/{other.shared['id']}"),
            c.get(href(other, other.shared)),
            c.get(f"/v1/cases/{uuid.uuid4()}/documents/{story.shared['id']}"),
        ]
    assert shared.status_code == 200 and shared.content == story.shared_bytes
    assert [r.status_code for r in refused] == [404] * len(refused)
    assert len({r.text for r in refused}) == 1, "one body for everything China may not open"
    assert refused[0].headers["content-type"] == "application/problem+json"
    with deployment.review.client(eu) as c:
        wrong_case = c.get(f"/v1/cases/{story.case['id']}/documents/{other.private['id']}")
    assert wrong_case.status_code == 404 and wrong_case.text == refused[0].text


def test_every_download_is_audited_and_china_never_sees_one_of_a_document_hidden_from_it(
    deployment: Deployment, officials: dict[str, Any], company_a: dict[str, Any]
) -> None:
    story = tell(deployment, officials, company_a)
    send_to_china(deployment, officials, story)
    eu, cn = officials["eu_officer"], officials["cn_officer"]
    with deployment.review.client(eu["token"]) as c:
        assert c.get(href(story, story.private)).status_code == 200
        assert c.get(href(story, story.shared)).status_code == 200
    with deployment.review.client(cn["token"]) as c:
        assert c.get(href(story, story.shared)).status_code == 200
        assert c.get(href(story, story.private)).status_code == 404
    case_id = story.case["id"]
    eu_chain = audit(deployment, eu["token"], case_id)
    assert downloads(eu_chain) == [
        (eu["id"], story.private["id"]),
        (eu["id"], story.shared["id"]),
        (cn["id"], story.shared["id"]),
    ], "who opened which document; a refused download leaves no entry"
    entry = next(e for e in eu_chain if e["action"] == "document_downloaded")
    assert entry["actor"] == {"id": eu["id"], "side": "EU", "role": "officer"}
    assert entry["at"] and entry["payload"]["filename"] == "Vertrag Größe.pdf"
    assert entry["payload"]["sha256"] == story.private["sha256"]
    cn_chain = audit(deployment, cn["token"], case_id)
    assert downloads(cn_chain) == [(eu["id"], story.shared["id"]), (cn["id"], story.shared["id"])]
    with deployment.review.client(cn["token"]) as c:
        cn_text = c.get(f"/v1/cases/{case_id}/audit").text
        cn_verified = c.get(f"/v1/cases/{case_id}/audit/verify").json()
    for hidden in (story.private["id"], story.private["sha256"], "Vertrag"):
        assert hidden not in cn_text
    assert [e["seq"] for e in cn_chain] == list(range(1, len(cn_chain) + 1))
    assert cn_verified["ok"] is True, cn_verified
    with deployment.review.client(eu["token"]) as c:
        eu_verified = c.get(f"/v1/cases/{case_id}/audit/verify").json()
    assert eu_verified["ok"] is True, eu_verified


def test_bytes_that_changed_in_the_store_are_not_handed_out_and_leave_no_entry(
    deployment: Deployment, officials: dict[str, Any], company_a: dict[str, Any]
) -> None:
    story = tell(deployment, officials, company_a)
    stored = deployment.folder / story.private["sha256"][:2] / story.private["sha256"]
    stored.write_bytes(story.private_bytes.replace(b"%PDF-1.4", b"%PDF-1.7"))
    eu = token(officials, "eu_officer")
    with deployment.review.client(eu) as c:
        corrupt = c.get(href(story, story.private))
    stored.unlink()
    with deployment.review.client(eu) as c:
        missing = c.get(href(story, story.private))
    for answer in (corrupt, missing):
        assert answer.status_code == 500
        assert answer.json()["type"].endswith("/document-unavailable")
        assert b"%PDF" not in answer.content
    assert downloads(audit(deployment, eu, story.case["id"])) == []


def test_a_document_the_applicant_deleted_cannot_be_opened(
    deployment: Deployment, officials: dict[str, Any], company_a: dict[str, Any]
) -> None:
    story = tell(deployment, officials, company_a)
    with deployment.intake.client(company_a["api_key"]) as c:
        r = c.delete(f"/v1/applications/{story.app['id']}/documents/{story.shared['id']}")
    assert r.status_code == 204, r.text
    eu = token(officials, "eu_officer")
    wait_until(
        lambda: len(documents_seen(deployment, eu, story.case["id"])) == 1,
        timeout=20,
        what="the deletion reaches review",
    )
    with deployment.review.client(eu) as c:
        gone = c.get(href(story, story.shared))
    assert gone.status_code == 404
    assert gone.json()["detail"] == "No such document."


def test_the_console_hands_out_the_same_bytes_under_its_session_with_the_same_rules(
    deployment: Deployment, officials: dict[str, Any], company_a: dict[str, Any]
) -> None:
    story = tell(deployment, officials, company_a)
    send_to_china(deployment, officials, story)
    case_id = story.case["id"]
    eu, cn = officials["eu_supervisor"], officials["cn_supervisor"]

    def console(official: dict[str, Any]) -> httpx.Client:
        return signed_in_console(deployment.review.url, official)  # as a person signs in

    with console(eu) as c:
        page = c.get(f"/cases/{case_id}").text
        private = c.get(f"/cases/{case_id}/documents/{story.private['id']}")
    assert f'href="/cases/{case_id}/documents/{story.private["id"]}"' in page
    assert private.status_code == 200 and private.content == story.private_bytes
    assert private.headers["content-disposition"].startswith('attachment; filename="Vertrag')
    assert private.headers["x-content-type-options"] == "nosniff"
    with console(cn) as c:
        page = c.get(f"/cases/{case_id}").text
        shared = c.get(f"/cases/{case_id}/documents/{story.shared['id']}")
        hidden = c.get(f"/cases/{case_id}/documents/{story.private['id']}")
    assert f'href="/cases/{case_id}/documents/{story.shared["id"]}"' in page
    assert story.private["id"] not in page
    assert shared.status_code == 200 and shared.content == story.shared_bytes
    assert hidden.status_code == 404 and "Vertrag" not in hidden.text
    with httpx.Client(base_url=deployment.review.url) as c:
        anonymous = c.get(f"/cases/{case_id}/documents/{story.shared['id']}")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/sign-in"
    assert downloads(audit(deployment, eu["token"], case_id)) == [
        (eu["id"], story.private["id"]),
        (cn["id"], story.shared["id"]),
    ]
