"""Settings of the README's table that had no test seeing their effect: each is changed here
and the difference observed (tests/unit/test_settings_table.py maps every setting to its test)."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.intake.domain import References
from services.intake.settings import IntakeSettings
from shared.config import CommonSettings, ServiceSettings
from shared.db import make_engine
from shared.directory import open_directory
from shared.runtime import ServiceRuntime
from tests.integration.notify_support import notify_env
from tests.integration.test_intake_input import _one_response as one_response
from tests.people import enrol_staff, portal, settings_of
from tests.support import Infra, ServiceProcess, free_port, started, wait_until


@pytest.fixture(scope="module")
def tight(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """Intake with a small head limit, a short keep-alive and three connections at once."""
    own = infra.isolated(tmp_path_factory.mktemp("tight"))
    env = own.env(
        REE_MAX_HEAD_BYTES="4096",
        REE_KEEP_ALIVE_SECONDS="1",
        REE_LIMIT_CONCURRENCY="3",
        # Held-open connections below must not be closed for a slow head meanwhile.
        REE_HEADER_TIMEOUT_SECONDS="120",
    )
    service = ServiceProcess("intake", env).start()
    yield service
    service.stop()
    own.drop_schemas()


@pytest.fixture(scope="module")
def roomy(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """Intake with the default head limit and a long keep-alive, to compare with."""
    own = infra.isolated(tmp_path_factory.mktemp("roomy"))
    service = ServiceProcess("intake", own.env(REE_KEEP_ALIVE_SECONDS="120")).start()
    yield service
    service.stop()
    own.drop_schemas()


def connected(service: ServiceProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", service.port), timeout=60)


def answer_of(sock: socket.socket) -> bytes:
    """The head of one whole response."""
    return one_response(sock).partition(b"\r\n\r\n")[0]


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def test_a_head_beyond_max_head_bytes_is_refused(
    tight: ServiceProcess, roomy: ServiceProcess
) -> None:
    # 6,000 bytes of a head that has not ended: past 4,096, within the default 64 KiB.
    unfinished = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 6000
    small, large = connected(tight), connected(roomy)
    try:
        small.sendall(unfinished)
        assert small.recv(65536).startswith(b"HTTP/1.1 400")
        large.sendall(unfinished)
        large.sendall(b"\r\n\r\n")  # the same head, finished: served
        assert b" 200 " in answer_of(large).split(b"\r\n")[0]
    finally:
        small.close()
        large.close()


def test_an_idle_kept_alive_connection_is_closed_after_keep_alive_seconds(
    tight: ServiceProcess, roomy: ServiceProcess
) -> None:
    short, long = connected(tight), connected(roomy)
    try:
        for sock in (short, long):
            sock.sendall(HEALTHZ)
            assert b" 200 " in answer_of(sock).split(b"\r\n")[0]
        # The 1 s connection closes (recv answers b"" once the server has closed it) ...
        assert short.recv(1) == b""
        # ... while the 120 s one, idle as long, is still open.
        long.setblocking(False)
        with pytest.raises(BlockingIOError):
            long.recv(1)
    finally:
        short.close()
        long.close()


def test_requests_beyond_limit_concurrency_are_answered_503(tight: ServiceProcess) -> None:
    # Two connections held open with an unfinished head, then a request on a third: three
    # connections, the limit.
    held = [connected(tight) for _ in range(2)]
    try:
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        assert httpx.get(tight.url + "/healthz").status_code == 503
    finally:
        for sock in held:
            sock.close()
    wait_until(lambda: httpx.get(tight.url + "/healthz").status_code == 200, what="room again")


def test_the_reference_secret_keys_the_references() -> None:
    one = IntakeSettings(REE_REFERENCE_SECRET="first reference key")
    other = IntakeSettings(REE_REFERENCE_SECRET="second reference key")
    derived = IntakeSettings()
    keys = {s.references_key() for s in (one, other, derived)}
    assert len(keys) == 3, "set, it replaces the key derived from REE_TOKEN_SECRET"
    digits = {References(k).digits(1) for k in keys}
    assert len(digits) == 3, "the same application number, three references"


def test_the_relay_lock_prune_batch_and_upkeep_settings_reach_the_runtime(tmp_path: Path) -> None:
    base = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none", "REE_DATA_DIR": str(tmp_path)}
    runtime = ServiceRuntime(
        ServiceSettings(**base, REE_RELAY_LOCK_MS=700, REE_PRUNE_BATCH=7), tmp_path
    )
    assert runtime.relay.lock_ms == 700
    assert runtime.pruning.batch == 7
    kept = ServiceRuntime(ServiceSettings(**base, REE_UPKEEP_SECONDS=5), tmp_path)
    left = ServiceRuntime(ServiceSettings(**base, REE_UPKEEP_SECONDS=0), tmp_path)
    assert len(kept.workers) == len(left.workers) + 1, "0 leaves the tables to autovacuum"
    for made in (runtime, kept, left):
        made.engine.dispose()
        made.directory_engine.dispose()


def test_upkeep_seconds_sets_how_often_a_service_vacuums(infra: Infra, tmp_path: Path) -> None:
    if not infra.database_url:
        pytest.skip("VACUUM is PostgreSQL's; this run has no DATABASE_URL")
    own = infra.isolated(tmp_path)
    service = ServiceProcess(
        "intake", own.env(REE_UPKEEP_SECONDS="0.5", REE_LOG_LEVEL="INFO")
    ).start()
    settings = CommonSettings(DATABASE_URL=own.database_url, REE_SCHEMA_PREFIX=own.prefix)
    engine = make_engine(settings, "intake")
    try:
        with engine.begin() as conn:
            # Published rows, as the relay leaves them, then updated: 2,000 dead versions.
            conn.execute(
                text(
                    "INSERT INTO outbox (event_id, stream, event_type, fields_json, created_at,"
                    " published_at) SELECT 'e' || g, 's', 't', '{}', now(), now()"
                    " FROM generate_series(1, 2000) g"
                )
            )
            conn.execute(text("UPDATE outbox SET stream_id = '0-1'"))
            conn.execute(text("SELECT pg_stat_force_next_flush()"))
        wait_until(
            lambda: "table upkeep: VACUUM outbox" in service.log_path.read_text(),
            timeout=60,
            what="the service's own VACUUM of its outbox",
        )
    finally:
        service.stop()
        engine.dispose()
        own.drop_schemas()


def test_the_delivery_log_days_setting_prunes_through_notifys_wiring(
    infra: Infra, tmp_path: Path
) -> None:
    from services.notify.app import build
    from services.notify.settings import NotifySettings
    from shared.db import migrate, utcnow

    own = infra.isolated(tmp_path)
    settings = NotifySettings(
        DATABASE_URL=own.database_url,
        REDIS_URL=own.redis_url,
        REE_SCHEMA_PREFIX=own.prefix,
        REE_STREAM_PREFIX=own.prefix,
        REE_DATA_DIR=str(tmp_path),
        REE_DELIVERY_LOG_DAYS=30,
    )
    app = build(settings)
    runtime = app.state.runtime
    from services.notify.app import MIGRATIONS

    migrate(runtime.engine, MIGRATIONS, settings.schema_for("notify"))
    now = utcnow()
    with runtime.engine.begin() as conn:
        for seq, age in ((1, 31), (2, 29)):
            conn.execute(
                text(
                    "INSERT INTO webhook_messages (seq, event_id, company_id, type, body,"
                    " event_time, created_at) VALUES (:s, :e, 'c', 't', '{}', :t, :t)"
                ),
                {"s": seq, "e": f"m-{seq}", "t": now - timedelta(days=age)},
            )

    async def once() -> dict[str, int]:
        try:
            return (await runtime.pruning.once()).rows
        finally:
            await runtime.redis.aclose()

    try:
        assert asyncio.run(once())["webhook_messages"] == 1
        with runtime.engine.connect() as conn:
            left = list(conn.execute(text("SELECT seq FROM webhook_messages")).scalars())
        assert left == [2], "31 days old went, 29 days old stayed"
    finally:
        runtime.engine.dispose()
        runtime.directory_engine.dispose()
        own.drop_schemas()


@pytest.fixture(scope="module")
def portal_notify(infra: Infra) -> Iterator[ServiceProcess]:
    with started("notify", notify_env(infra)) as service:
        yield service


def _portal_admin(infra: Infra) -> tuple[dict[str, str], dict[str, Any]]:
    """A company with its API key and an admin of its staff, for the portal's pages."""
    directory = open_directory(settings_of(infra))
    try:
        eori = "DE" + uuid.uuid4().hex[:12].upper()
        company, key = directory.create_company("Zeta Sinter AG", eori)
        return {"id": company.id, "api_key": key}, enrol_staff(directory, company.id, "Zoe Zeta")
    finally:
        directory.engine.dispose()


def test_the_portal_reaches_notify_at_the_notify_url(
    infra: Infra, portal_notify: ServiceProcess
) -> None:
    company, admin = _portal_admin(infra)
    with portal_notify.client(company["api_key"]) as api:
        made = api.post(
            "/v1/webhook-endpoints",
            json={"url": "http://127.0.0.1:9/zeta-hooks", "event_types": ["licence.issued"]},
        )
        assert made.status_code == 201, made.text
    nowhere = f"http://127.0.0.1:{free_port()}"
    for notify_url, status in ((portal_notify.url, 200), (nowhere, 503)):
        env = infra.env(REE_NOTIFY_URL=notify_url)
        with started("intake", env) as intake, portal(intake.url, admin) as browser:
            page = browser.get("/webhooks")
        assert page.status_code == status, page.text[:300]
        assert ("http://127.0.0.1:9/zeta-hooks" in page.text) == (status == 200)


def test_the_portal_waits_for_notify_no_longer_than_its_timeout(infra: Infra) -> None:
    """A notify that takes the connection and never answers: the page gives up in time."""
    _company, admin = _portal_admin(infra)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # the kernel completes the connections; nothing ever answers
    env = infra.env(
        REE_NOTIFY_URL=f"http://127.0.0.1:{silent.getsockname()[1]}",
        REE_NOTIFY_TIMEOUT_SECONDS="0.5",
    )
    try:
        with started("intake", env) as intake, portal(intake.url, admin) as browser:
            browser.get("/")  # signed in, before the clock starts
            begun = time.monotonic()
            page = browser.get("/webhooks")
            waited = time.monotonic() - begun
        assert page.status_code == 503 and "Webhooks are unavailable right now" in page.text
        assert waited < 3, waited  # the default would wait 5 s
    finally:
        silent.close()
