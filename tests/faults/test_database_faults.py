"""The database going away: clean 503s, nothing half-written, work resumes; startup waits."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from shared.db import ping_when_idle
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


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


@pytest.mark.parametrize("idle_seconds", [0.2, 60.0])
def test_a_pooled_connection_closed_while_idle_is_replaced_before_use(idle_seconds: float) -> None:
    """The database closes a pooled connection (a restart, a proxy's idle timeout). Once it
    has been idle past the threshold, the checkout pings it and hands out a new one; below
    the threshold there is no ping (no round trip for connections in steady use), so the
    next unit of work fails on it, which is what the threshold trades."""
    url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_seconds=idle_seconds)
    try:
        first = _backend_pid(engine)
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        time.sleep(0.4)
        if idle_seconds < 0.4:
            assert _backend_pid(engine) != first
        else:
            with pytest.raises(OperationalError):
                _backend_pid(engine)
            assert _backend_pid(engine) != first, "the pool recovers after the failure"
    finally:
        engine.dispose()
