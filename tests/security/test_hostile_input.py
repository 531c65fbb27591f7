"""Hostile input: bounds on bodies, uploads, pages, strings; sniffed uploads; rate limit; CORS."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.conftest import application
from tests.people import form_nonce, sign_in_form, signed_in
from tests.security.conftest import CONSOLE_COOKIE, PORTAL_COOKIE, SERVICES, World
from tests.support import ServiceProcess

pytestmark = pytest.mark.slow

PER_MINUTE = 5


@pytest.fixture(scope="module")
def tight(world: World) -> Iterator[ServiceProcess]:
    """Intake with small limits, on the world's data: 1 kB documents, 2 kB bodies, 5 a minute."""
    env = world.infra.env(
        REE_LOG_LEVEL="DEBUG",
        REE_MAX_UPLOAD_BYTES="1000",
        REE_MAX_BODY_BYTES="2000",
        REE_RATE_LIMIT_PER_MINUTE=str(PER_MINUTE),
        # Counted by this process alone: the world's own intake, with a high limit, shares
        # the Redis windows of the same credentials (tests/integration/test_shared_rate_limit.py).
        REE_RATE_LIMIT_SCOPE="process",
    )
    service = ServiceProcess("intake", env).start()
    yield service
    service.stop()


def _upload(world: World, name: str, content: bytes) -> httpx.Response:
    with world.client("intake", "applicant_a") as c:
        return c.post(
            f"/v1/applications/{world.ids['app_main']}/documents",
            files={"file": (name, content, "application/pdf")},
            data={"kind": "other"},
        )


def test_an_upload_is_typed_by_its_content_not_by_its_name(world: World) -> None:
    executable = _upload(world, "invoice.pdf", b"\x7fELF\x02\x01\x01" + b"\0" * 64)
    zipped = _upload(world, "invoice.pdf", b"PK\x03\x04" + b"\0" * 64)
    # A whole PNG: signature, content, IEND (its structure is checked too, finding F18).
    png = _upload(
        world, "invoice.pdf", b"\x89PNG\r\n\x1a\n" + b"\0" * 64 + b"\0\0\0\0IEND\xaeB`\x82"
    )
    html = _upload(world, "page.html", b"<html><script>alert(1)</script></html>")
    assert executable.status_code == 415 and zipped.status_code == 415
    assert png.status_code == 201 and png.json()["content_type"] == "image/png"
    # Markup is only ever text: served back as a text/plain attachment the browser won't run.
    assert html.status_code == 201 and html.json()["content_type"] == "text/plain"
    with world.client("intake", "applicant_a") as c:
        back = c.get(f"/v1/applications/{world.ids['app_main']}/documents/{html.json()['id']}")
    assert back.headers["content-type"].startswith("text/plain")
    assert back.headers["content-disposition"].startswith("attachment")
    assert back.headers["x-content-type-options"] == "nosniff"


def test_a_document_name_cannot_climb_out_of_the_store(world: World) -> None:
    stored = _upload(world, "../../../etc/passwd.pdf", b"%PDF-1.4\n%%EOF\n")
    assert stored.status_code == 201, stored.text
    name = stored.json()["filename"]
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    with world.client("intake", "applicant_a") as c:
        app = world.ids["app_main"]
        download = c.get(f"/v1/applications/{app}/documents/{stored.json()['id']}")
        escaped = c.get(f"/v1/applications/{app}/documents/..%2F..%2Fintake.db")
    assert download.status_code == 200 and download.content.startswith(b"%PDF")
    assert "/" not in download.headers["content-disposition"].split("filename=")[-1]
    assert escaped.status_code == 404


def test_an_empty_upload_is_refused(world: World) -> None:
    assert _upload(world, "empty.pdf", b"").status_code == 422


def test_oversized_uploads_and_bodies_are_refused_with_413(
    tight: ServiceProcess, world: World
) -> None:
    key = world.credentials["applicant_b"]
    with tight.client(key) as c:
        own = c.post("/v1/applications", json=application())
        assert own.status_code == 201, own.text
        upload = c.post(
            f"/v1/applications/{own.json()['id']}/documents",
            files={"file": ("big.pdf", b"%PDF-1.4\n" + b"x" * 5000)},
        )
        body = c.post(
            "/v1/applications",
            json=application(end_use={"category": "other", "description": "x" * 1900}),
        )
    assert upload.status_code == 413
    assert body.status_code == 413
    assert body.headers["content-type"] == "application/problem+json"


def test_the_rate_limit_is_per_credential_and_answers_429_with_retry_after(
    tight: ServiceProcess, world: World
) -> None:
    with tight.client(world.credentials["applicant_a"]) as c:
        statuses = [c.get("/v1/applications", params={"limit": 1}).status_code for _ in range(8)]
        limited = c.get("/v1/applications")
    assert statuses[: PER_MINUTE - 1].count(200) == PER_MINUTE - 1
    assert 429 in statuses and limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    with tight.client(world.credentials["eu_officer"]) as other:
        assert other.get("/v1/applications").status_code == 403, "another credential is served"


@pytest.mark.parametrize(
    ("service", "kind", "path"),
    [
        ("intake", "applicant_a", "/v1/applications"),
        ("notify", "applicant_a", "/v1/webhook-endpoints"),
        ("review", "eu_officer", "/v1/cases"),
        ("review", "eu_officer", "/v1/priority-lists"),
    ],
)
@pytest.mark.parametrize("limit", ["0", "-1", "201", "100000000000000000000", "ten"])
def test_page_sizes_are_bounded(
    world: World, service: str, kind: str, path: str, limit: str
) -> None:
    with world.client(service, kind) as c:
        assert c.get(path, params={"limit": limit}).status_code == 422
        assert c.get(path, params={"limit": "200"}).status_code == 200


def _long(n: int) -> str:
    return "x" * n


@pytest.mark.parametrize(
    ("service", "kind", "method", "path", "body"),
    [
        (
            "intake",
            "applicant_a",
            "POST",
            "/v1/applications",
            application(mofcom_application_number=_long(500)),
        ),
        (
            "intake",
            "applicant_a",
            "POST",
            "/v1/applications",
            application(exporter={"name": _long(201), "uscc": "91150200MA0N1X2Y3Z"}),
        ),
        (
            "intake",
            "applicant_a",
            "POST",
            "/v1/applications/{app_asked}/withdraw",
            {"reason": _long(2001)},
        ),
        (
            "review",
            "eu_officer",
            "POST",
            "/v1/cases/{case_cn}/notes",
            {"text": _long(10_001), "visibility": "joint"},
        ),
        (
            "notify",
            "applicant_a",
            "POST",
            "/v1/webhook-endpoints",
            {"url": "https://example.com/" + _long(3000), "event_types": ["application.received"]},
        ),
    ],
)
def test_strings_have_bounds(
    world: World, service: str, kind: str, method: str, path: str, body: dict[str, Any]
) -> None:
    with world.client(service, kind) as c:
        answer = c.request(method, path.format(**world.ids), json=body)
    assert answer.status_code == 422, answer.text
    assert _long(200) not in answer.text, "a refused value is not echoed back"


def test_an_idempotency_key_has_a_bound(world: World) -> None:
    with world.client("intake", "applicant_a") as c:
        answer = c.post(
            "/v1/applications", json=application(), headers={"Idempotency-Key": _long(256)}
        )
    assert answer.status_code == 422


@pytest.mark.parametrize("service", SERVICES)
def test_cors_is_closed_no_other_origin_is_allowed(world: World, service: str) -> None:
    origin = {"Origin": "https://evil.example"}
    with world.client(service, "applicant_a") as c:
        simple = c.get("/healthz", headers=origin)
        preflight = c.options(
            "/v1/applications",
            headers={**origin, "Access-Control-Request-Method": "POST"},
        )
    for answer in (simple, preflight):
        assert "access-control-allow-origin" not in answer.headers
        assert "access-control-allow-credentials" not in answer.headers


def test_console_pages_carry_security_headers_and_strict_cookies(world: World) -> None:
    review = world.services["review"].url
    with httpx.Client(base_url=review) as c:
        sign_in = c.get("/sign-in")
        signed = c.post(
            "/sign-in", data=sign_in_form(world.people["eu_officer"], form_nonce(sign_in))
        )
        queue = c.get("/")
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    for page in (sign_in, queue):
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["cache-control"] == "no-store"


def test_console_forms_without_the_sessions_csrf_token_change_nothing(world: World) -> None:
    session = world.sessions["eu_officer"]
    case_id = world.ids["case_cn"]
    api = world.client("review", "eu_officer")
    before = api.get(f"/v1/cases/{case_id}").json()
    with httpx.Client(
        base_url=world.services["review"].url, cookies={CONSOLE_COOKIE: session}
    ) as c:
        missing = c.post(f"/cases/{case_id}/notes", data={"text": "forged", "visibility": "joint"})
        wrong = c.post(
            f"/cases/{case_id}/notes",
            data={"text": "forged", "visibility": "joint", "csrf": world.csrf("another session")},
        )
        sign_in = c.post("/sign-in", data=sign_in_form(world.people["eu_officer"], "no nonce"))
    after = api.get(f"/v1/cases/{case_id}").json()
    api.close()
    assert missing.status_code == 403 and wrong.status_code == 403
    assert sign_in.status_code == 403, "sign-in needs the nonce of the sign-in page"
    assert after["version"] == before["version"]
    assert "forged" not in [n["text"] for n in after["notes"]]


def _portal_csrf(page: httpx.Response) -> str:
    """The CSRF token a portal page's forms carry."""
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the page has a form with its CSRF token"
    return found.group(1)


def test_portal_pages_carry_security_headers_and_strict_cookies(world: World) -> None:
    intake = world.services["intake"].url
    with httpx.Client(base_url=intake) as c:
        sign_in = c.get("/sign-in")
        signed = signed_in(c, world.people["portal_applicant_a"])
        applications = c.get("/")
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"].lower()
    assert cookie.startswith(PORTAL_COOKIE + "=")
    assert "httponly" in cookie and "samesite=strict" in cookie
    for page in (sign_in, applications):
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["cache-control"] == "no-store"


def test_portal_uploads_are_bounded_and_typed_by_content(
    world: World, tight: ServiceProcess
) -> None:
    """Through the portal's form as through the API: over the limit 413, a disguised file
    415, and nothing stored either way (the tight intake: 1 kB documents)."""
    app_id = world.ids["app_main"]
    before = _documents_of(world, app_id)
    with httpx.Client(
        base_url=tight.url, cookies={PORTAL_COOKIE: world.portal_cookie("applicant_a") or ""}
    ) as c:
        token = _portal_csrf(c.get(f"/applications/{app_id}"))
        big = c.post(
            f"/applications/{app_id}/documents",
            data={"csrf": token, "kind": "other"},
            files={"file": ("big.pdf", b"%PDF-1.7\n" + b"x" * 5000, "application/pdf")},
        )
        disguised = c.post(
            f"/applications/{app_id}/documents",
            data={"csrf": token, "kind": "other"},
            files={"file": ("invoice.pdf", b"MZ\x90\x00 not a pdf at all", "application/pdf")},
        )
    assert big.status_code == 413, big.text[:300]
    assert disguised.status_code == 415, disguised.text[:300]  # as the API answers it
    for page in (big, disguised):
        assert page.headers["content-type"].startswith("text/html"), "a page, not JSON"
    assert _documents_of(world, app_id) == before


def test_portal_forms_refuse_overlong_text_and_store_nothing(world: World) -> None:
    """An answer far over its bound is refused next to its field; the request stays open."""
    app_id = world.ids["app_main"]
    with world.client("intake", "applicant_a") as api:
        before = api.get(f"/v1/applications/{app_id}").json()
    with httpx.Client(
        base_url=world.services["intake"].url,
        cookies={PORTAL_COOKIE: world.portal_cookie("applicant_a") or ""},
    ) as c:
        token = _portal_csrf(c.get(f"/applications/{app_id}"))
        withdrawal = c.post(
            f"/applications/{app_id}/withdraw", data={"csrf": token, "reason": "x" * 100_000}
        )
    with world.client("intake", "applicant_a") as api:
        after = api.get(f"/v1/applications/{app_id}").json()
    assert withdrawal.status_code in (413, 422), withdrawal.text[:300]
    assert after["status"] == before["status"] != "withdrawn"
    assert after["timeline"] == before["timeline"]


def _documents_of(world: World, app_id: str) -> list[str]:
    with world.client("intake", "applicant_a") as api:
        return sorted(d["id"] for d in api.get(f"/v1/applications/{app_id}").json()["documents"])
