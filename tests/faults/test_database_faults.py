"""The database going away: clean 503s, nothing half-written, work resumes; startup waits."""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.faults.conftest import System
from tests.integration.conftest import application
from tests.support import ServiceProcess, TcpProxy, wait_until

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL"),
    reason="needs a database server to take away (set DATABASE_URL; CI uses PostgreSQL)",
)


@pytest.fixture
def db_proxy() -> Iterator[tuple[TcpProxy, str]]:
    url = urlsplit(os.environ["DATABASE_URL"])
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 5432)
    netloc = url.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    proxied = urlunsplit(url._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))
    yield proxy, proxied
    proxy.close()


def count(intake: ServiceProcess, key: str) -> int:
    with intake.client(key) as c:
        return len(c.get("/v1/applications", params={"limit": 200}).json()["items"])


def test_requests_fail_cleanly_while_the_database_is_away_and_work_resumes(
    system: System, db_proxy: tuple[TcpProxy, str]
) -> None:
    proxy, url = db_proxy
    intake = system.start("intake", DATABASE_URL=url)
    key = system.company["api_key"]
    with intake.client(key) as c:
        assert c.post("/v1/applications", json=application()).status_code == 201
    proxy.cut()
    with intake.client(key) as c:
        down = [c.post("/v1/applications", json=application()) for _ in range(3)]
        ready = c.get("/readyz")
    assert {r.status_code for r in down} == {503}
    assert all(r.headers["content-type"] == "application/problem+json" for r in down)
    assert ready.status_code == 503 and ready.json()["checks"]["database"] is False
    proxy.restore()
    with intake.client(key) as c:
        wait_until(lambda: c.get("/readyz").status_code == 200, timeout=30)
        assert c.post("/v1/applications", json=application()).status_code == 201
    assert count(intake, key) == 2, "the refused requests stored nothing"


def test_a_service_started_before_its_database_waits_and_then_serves(
    system: System, db_proxy: tuple[TcpProxy, str]
) -> None:
    proxy, url = db_proxy
    proxy.cut()
    intake = ServiceProcess("intake", system.infra.env(DATABASE_URL=url)).start(wait_ready=False)
    system.services["intake"] = intake
    with httpx.Client(base_url=intake.url, timeout=10) as c:
        wait_until(lambda: c.get("/healthz").status_code == 200, timeout=30, what="alive")
        assert c.get("/readyz").status_code == 503
        early = c.post(
            "/v1/applications",
            json=application(),
            headers={"Authorization": f"Bearer {system.company['api_key']}"},
        )
        assert early.status_code == 503 and early.headers["retry-after"]
        proxy.restore()
        wait_until(lambda: c.get("/readyz").status_code == 200, timeout=60, what="ready")
        late = c.post(
            "/v1/applications",
            json=application(),
            headers={"Authorization": f"Bearer {system.company['api_key']}"},
        )
    assert late.status_code == 201
