"""Intake refuses hostile input over real HTTP, storing and sending nothing (red-team findings
F2, F8, F9, F16, F18, F19 and the reference numbers of issue 17)."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import socket
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import application, new_company
from tests.support import Infra, ServiceProcess

STREAM = "intake.events"
# 280530 in Arabic-Indic and in full-width digits.
ARABIC_INDIC = "\u0662\u0668\u0660\u0665\u0663\u0660"
FULL_WIDTH = "\uff12\uff18\uff10\uff15\uff13\uff10"


def _events(infra: Infra) -> list[dict[str, Any]]:
    return [fields for _id, fields in infra.redis().xrange(infra.stream(STREAM))]


def _count(intake: ServiceProcess, key: str) -> int:
    with intake.client(key) as c:
        return len(c.get("/v1/applications", params={"limit": 200}).json()["items"])


def _post_raw(intake: ServiceProcess, key: str, raw: str) -> Any:
    with intake.client(key) as c:
        return c.post(
            "/v1/applications", content=raw.encode(), headers={"Content-Type": "application/json"}
        )


def _assert_refused(
    r: Any, field: str, intake: ServiceProcess, infra: Infra, key: str, events_before: int
) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    fields = [e["field"] for e in r.json()["errors"]]
    assert field in fields, fields
    assert _count(intake, key) == 0
    assert len(_events(infra)) == events_before


@pytest.mark.parametrize("number", ["Infinity", "-Infinity", "NaN", "1e400"])
@pytest.mark.parametrize(
    "field",
    ["urgency.contract_value_eur", "goods.0.quantity_kg", "goods.0.value_eur"],
)
def test_a_non_finite_number_is_422_and_nothing_is_stored_or_sent(
    intake: ServiceProcess, infra: Infra, number: str, field: str
) -> None:
    company = new_company(infra)
    body = application(urgency={"contract_value_eur": 1000.0})
    body["goods"][0]["quantity_kg"] = 10.0
    raw = json.dumps(body)
    target = {
        "urgency.contract_value_eur": '"contract_value_eur": 1000.0',
        "goods.0.quantity_kg": '"quantity_kg": 10.0',
        "goods.0.value_eur": '"value_eur": 51000',
    }[field]
    assert target in raw
    raw = raw.replace(target, target.split(":")[0] + ": " + number)
    before = len(_events(infra))
    r = _post_raw(intake, company["api_key"], raw)
    _assert_refused(r, field, intake, infra, company["api_key"], before)


def _days(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


@pytest.mark.parametrize("stop", ["0001-01-01", "2000-01-01", "9999-12-31", "yesterday-1"])
def test_a_production_stop_date_in_the_past_or_far_ahead_is_422(
    intake: ServiceProcess, infra: Infra, stop: str
) -> None:
    company = new_company(infra)
    if stop == "yesterday-1":
        stop = _days(-2)
    before = len(_events(infra))
    r = _post_raw(
        intake,
        company["api_key"],
        json.dumps(application(urgency={"stock_days": 3, "production_stop_date": stop})),
    )
    _assert_refused(r, "urgency.production_stop_date", intake, infra, company["api_key"], before)


@pytest.mark.parametrize(
    ("field", "change"),
    [
        (
            "goods.0.hs_code",
            {
                "goods": [
                    {
                        "element": "Dy",
                        "form": "metal",
                        "hs_code": ARABIC_INDIC,
                        "quantity_kg": 1,
                    }
                ]
            },
        ),
        (
            "goods.0.hs_code",
            {
                "goods": [
                    {
                        "element": "Dy",
                        "form": "metal",
                        "hs_code": FULL_WIDTH,
                        "quantity_kg": 1,
                    }
                ]
            },
        ),
        (
            "goods.0.hs_code",
            {
                "goods": [
                    {"element": "Dy", "form": "metal", "hs_code": "..280530", "quantity_kg": 1}
                ]
            },
        ),
        ("consignee.country", {"consignee": {"name": "Bosch GmbH", "country": "XX"}}),
        ("exporter.uscc", {"exporter": {"name": "Baotou", "uscc": "91150200MA0N1X2Yß"}}),
        ("exporter.name", {"exporter": {"name": "Bao\x00tou", "uscc": "91150200MA0N1X2Y3Z"}}),
        ("consignee.name", {"consignee": {"name": "Bosch\u202e GmbH", "country": "DE"}}),
        ("end_user.name", {"end_user": {"name": "\u200b\u2060 ", "country": "DE"}}),
        ("end_use.description", {"end_use": {"category": "other", "description": "x\u2066y"}}),
    ],
)
def test_lookalike_codes_and_hidden_text_are_422_naming_the_field(
    intake: ServiceProcess, infra: Infra, field: str, change: dict[str, Any]
) -> None:
    company = new_company(infra)
    before = len(_events(infra))
    r = _post_raw(intake, company["api_key"], json.dumps(application(**change)))
    _assert_refused(r, field, intake, infra, company["api_key"], before)


def test_answers_reasons_and_file_names_take_the_text_rule(
    intake: ServiceProcess, infra: Infra
) -> None:
    company = new_company(infra)
    with intake.client(company["api_key"]) as c:
        app_id = c.post("/v1/applications", json=application()).json()["id"]
        reason = c.post(f"/v1/applications/{app_id}/withdraw", json={"reason": "no\u202ethanks"})
        name = c.post(
            f"/v1/applications/{app_id}/documents",
            files={"file": ("invoice\u202efdp.exe", b"plain text\n")},
        )
        view = c.get(f"/v1/applications/{app_id}").json()
    assert reason.status_code == 422 and reason.json()["errors"][0]["field"] == "reason"
    assert name.status_code == 422 and name.json()["errors"][0]["field"] == "file"
    assert view["status"] == "submitted" and view["documents"] == []


def test_references_keep_their_format_but_do_not_count(
    intake: ServiceProcess, infra: Infra
) -> None:
    company = new_company(infra)
    with intake.client(company["api_key"]) as c:
        references = [
            c.post("/v1/applications", json=application()).json()["reference"] for _ in range(6)
        ]
    year = datetime.now(UTC).year
    digits = []
    for reference in references:
        prefix, ref_year, number = reference.split("-")
        assert (prefix, ref_year) == ("REC", str(year))
        assert len(number) == 8 and number.isdigit()
        digits.append(int(number))
    assert len(set(digits)) == 6
    # A counter would give consecutive numbers; these are spread over the whole range.
    gaps = [abs(b - a) for a, b in itertools.pairwise(digits)]
    assert sum(1 for g in gaps if g < 1000) <= 1, digits


# --- documents: whole-file checks (F18) and limits (F16) -------------------------------------

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _docx(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "accepted"),
    [
        (b"a" * 10_000 + b"\n", True),
        (b"a" * 10_000 + b"MZ\x90\x00\x03\x00\x00\x00", False),
        (b"a" * 10_000 + b"\xff\xfe\xfd", False),
        (PDF, True),
        (PDF + b"PK\x03\x04" + b"\x90" * 4000, False),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 + PNG_END + b"MZ" * 100, False),
        (_docx(["[Content_Types].xml", "word/document.xml"]), True),
        (_docx(["[Content_Types].xml", "word/vbaProject.bin"]), False),
    ],
    ids=[
        "text",
        "text-then-executable",
        "text-then-not-utf8",
        "pdf",
        "pdf-then-zip",
        "png-then-more",
        "docx",
        "zip-without-main-part",
    ],
)
def test_an_upload_is_checked_throughout_not_by_its_first_8_kib(
    intake: ServiceProcess, infra: Infra, content: bytes, accepted: bool
) -> None:
    company = new_company(infra)
    with intake.client(company["api_key"]) as c:
        app_id = c.post("/v1/applications", json=application()).json()["id"]
        r = c.post(f"/v1/applications/{app_id}/documents", files={"file": ("doc", content)})
        documents = c.get(f"/v1/applications/{app_id}").json()["documents"]
    if accepted:
        assert r.status_code == 201, r.text
        assert [d["sha256"] for d in documents] == [hashlib.sha256(content).hexdigest()]
    else:
        assert r.status_code == 415, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert documents == []
        stored = infra.data_dir / "documents" / hashlib.sha256(content).hexdigest()[:2]
        assert not (stored / hashlib.sha256(content).hexdigest()).exists()


@pytest.fixture(scope="module")
def limited(infra: Infra) -> Any:
    service = ServiceProcess(
        "intake",
        infra.env(
            REE_UPLOAD_QUOTA_BYTES="3000",
            REE_MAX_DOCUMENTS_PER_APPLICATION="2",
            REE_MAX_APPLICATION_DOCUMENT_BYTES="2500",
        ),
    ).start()
    yield service
    service.stop()


def _text(size: int, tag: str) -> bytes:
    return (tag * size)[:size].encode()


def test_documents_per_application_are_limited_in_number_and_bytes(
    limited: ServiceProcess, infra: Infra
) -> None:
    company = new_company(infra)
    with limited.client(company["api_key"]) as c:
        app_id = c.post("/v1/applications", json=application()).json()["id"]
        first = c.post(
            f"/v1/applications/{app_id}/documents", files={"file": ("a", _text(1000, "a"))}
        )
        too_big = c.post(
            f"/v1/applications/{app_id}/documents", files={"file": ("b", _text(1600, "b"))}
        )
        second = c.post(
            f"/v1/applications/{app_id}/documents", files={"file": ("c", _text(900, "c"))}
        )
        third = c.post(
            f"/v1/applications/{app_id}/documents", files={"file": ("d", _text(10, "d"))}
        )
        documents = c.get(f"/v1/applications/{app_id}").json()["documents"]
    assert first.status_code == second.status_code == 201
    assert (
        too_big.status_code == 413 and too_big.headers["content-type"] == "application/problem+json"
    )
    assert third.status_code == 413 and "at most 2 documents" in third.json()["detail"]
    assert [d["size"] for d in documents] == [1000, 900]


def test_a_companys_documents_are_limited_by_its_quota(
    limited: ServiceProcess, infra: Infra
) -> None:
    company = new_company(infra)
    other = new_company(infra)
    with limited.client(company["api_key"]) as c:
        ids = [c.post("/v1/applications", json=application()).json()["id"] for _ in range(2)]
        one = c.post(
            f"/v1/applications/{ids[0]}/documents", files={"file": ("a", _text(2000, "a"))}
        )
        two = c.post(
            f"/v1/applications/{ids[1]}/documents", files={"file": ("b", _text(1500, "b"))}
        )
        fits = c.post(
            f"/v1/applications/{ids[1]}/documents", files={"file": ("c", _text(900, "c"))}
        )
    with limited.client(other["api_key"]) as c:
        app_id = c.post("/v1/applications", json=application()).json()["id"]
        others = c.post(
            f"/v1/applications/{app_id}/documents", files={"file": ("a", _text(2000, "a"))}
        )
    assert one.status_code == 201 and fits.status_code == 201
    assert two.status_code == 413 and two.json()["status"] == 413
    assert others.status_code == 201  # the quota is each company's own


def test_concurrent_uploads_cannot_pass_the_limits_together(
    limited: ServiceProcess, infra: Infra
) -> None:
    company = new_company(infra)
    with limited.client(company["api_key"]) as c:
        app_id = c.post("/v1/applications", json=application()).json()["id"]
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def upload(tag: str) -> None:
        with limited.client(company["api_key"]) as c:
            barrier.wait()
            r = c.post(
                f"/v1/applications/{app_id}/documents", files={"file": ("a", _text(1500, tag))}
            )
            codes.append(r.status_code)

    threads = [threading.Thread(target=upload, args=(tag,)) for tag in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with limited.client(company["api_key"]) as c:
        documents = c.get(f"/v1/applications/{app_id}").json()["documents"]
    assert sorted(codes) == [201, 413]
    assert [d["size"] for d in documents] == [1500]
    # The refused upload's bytes are not kept either.
    refused = next(
        hashlib.sha256(_text(1500, t)).hexdigest()
        for t in ("x", "y")
        if hashlib.sha256(_text(1500, t)).hexdigest() != documents[0]["sha256"]
    )
    assert not (infra.data_dir / "documents" / refused[:2] / refused).exists()


# --- the server's limits (F19) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_timeout(infra: Infra) -> Any:
    service = ServiceProcess("intake", infra.env(REE_HEADER_TIMEOUT_SECONDS="2")).start()
    yield service
    service.stop()


def _closed_after(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closes the socket, and what it sent before (recv times out,
    failing the test, if the server keeps the connection open past `limit`)."""
    started = time.monotonic()
    sock.settimeout(limit)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except ConnectionResetError:
        pass
    return time.monotonic() - started, received


@pytest.mark.parametrize(
    "partial",
    [b"", b"GET /healthz?slow=", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "],
    ids=["nothing", "part-of-the-request-line", "part-of-the-headers"],
)
def test_a_request_head_that_does_not_arrive_in_time_is_closed(
    quick_timeout: ServiceProcess, partial: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", quick_timeout.port)) as sock:
        sock.sendall(partial)
        # Bytes trickling in do not keep the connection open.
        if partial:
            sock.sendall(b"a")
        took, received = _closed_after(sock, limit=60)
    # Closed by the server's timer (2 s here), not at once for a malformed request.
    assert took >= 1.0 and received == b""


def _one_response(sock: socket.socket) -> bytes:
    """One whole HTTP response (head and Content-Length body), however it was segmented."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(4096)
    return head + b"\r\n\r\n" + body


def test_a_whole_request_is_answered_and_the_next_head_is_timed_again(
    quick_timeout: ServiceProcess,
) -> None:
    with socket.create_connection(("127.0.0.1", quick_timeout.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(30)
        answer = _one_response(sock)
        assert answer.startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        took, received = _closed_after(sock, limit=60)
    assert took >= 1.0 and received == b""


def test_a_request_head_too_large_is_400(quick_timeout: ServiceProcess) -> None:
    with socket.create_connection(("127.0.0.1", quick_timeout.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000)
        sock.settimeout(30)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:100]
