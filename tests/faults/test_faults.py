"""Fault injection on the running system: every accepted application ends as exactly one case."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import uuid
from typing import Any

import httpx
import pytest

from tests.faults.conftest import System
from tests.integration.conftest import application
from tests.support import ROOT, wait_until


def submit_many(system: System, keys: list[str]) -> dict[str, str]:
    """Submit with idempotency keys; retry failures with the same key until each is accepted."""
    accepted: dict[str, str] = {}
    intake = system.services["intake"]
    for key in keys:
        body = application()  # the same body on every retry of a key
        for _attempt in range(200):
            try:
                with intake.client(system.company["api_key"]) as c:
                    r = c.post("/v1/applications", json=body, headers={"Idempotency-Key": key})
                if r.status_code == 201:
                    accepted[key] = r.json()["id"]
                    break
            except httpx.HTTPError:
                pass
            threading.Event().wait(0.1)
    assert len(accepted) == len(keys), "every application is eventually accepted"
    return accepted


def case_count(system: System) -> tuple[int, set[str]]:
    token = system.officials["eu_officer"]["token"]
    with system.services["review"].client(token) as c:
        references: list[str] = []
        offset = 0
        while True:
            page = c.get("/v1/cases", params={"limit": 200, "offset": offset}).json()
            references += [i["reference"] for i in page["items"]]
            offset += 200
            if offset >= page["total"]:
                return page["total"], set(references)


def applicant_statuses(system: System, ids: list[str]) -> dict[str, str]:
    with system.services["intake"].client(system.company["api_key"]) as c:
        return {i: c.get(f"/v1/applications/{i}").json()["status"] for i in ids}


def all_screened(system: System, ids: list[str]) -> bool:
    return set(applicant_statuses(system, ids).values()) == {"eu_screening"}


# The killed review may hold its outbox relay's lock, which expires REE_RELAY_LOCK_MS (3 s)
# later: only then are its case.opened events published and projected. The waits are upper
# bounds for a busy machine; what the test checks is exactly-once, not speed.
@pytest.mark.timeout(300)
def test_review_killed_mid_batch_opens_each_case_exactly_once(system: System) -> None:
    system.start("intake")
    system.start("review", REE_CLAIM_IDLE_MS="1000")
    keys = [str(uuid.uuid4()) for _ in range(40)]
    killer = threading.Timer(0.5, lambda: system.services["review"].kill())
    killer.start()
    accepted = submit_many(system, keys)
    killer.join()
    system.restart("review")
    total, _ = wait_until(
        lambda: (n := case_count(system))[0] >= 40 and n, timeout=60, what="all cases opened"
    )
    assert total == 40
    wait_until(
        lambda: all_screened(system, list(accepted.values())),
        timeout=120,
        what="projection shows every case",
    )


def test_intake_killed_mid_batch_loses_and_duplicates_nothing(system: System) -> None:
    system.start("intake")
    system.start("review")
    keys = [str(uuid.uuid4()) for _ in range(40)]

    def kill_and_restart() -> None:
        system.services["intake"].kill()
        system.restart("intake")

    timer = threading.Timer(0.5, kill_and_restart)
    timer.start()
    accepted = submit_many(system, keys)
    timer.join()
    assert len(set(accepted.values())) == 40
    total, _ = wait_until(
        lambda: (n := case_count(system))[0] >= 40 and n, timeout=60, what="all cases opened"
    )
    assert total == 40
    wait_until(lambda: all_screened(system, list(accepted.values())), timeout=60)


def test_redis_restarted_with_its_data_loses_nothing(system: System) -> None:
    system.start("intake")
    system.start("review")
    first = submit_many(system, [str(uuid.uuid4()) for _ in range(10)])
    system.stop_redis()
    during = submit_many(system, [str(uuid.uuid4()) for _ in range(10)])
    system.start_redis()
    ids = list(first.values()) + list(during.values())
    wait_until(lambda: all_screened(system, ids), timeout=60, what="every case opened")
    assert case_count(system)[0] == 20


def test_redis_restarted_empty_is_refilled_from_the_outboxes(system: System) -> None:
    system.start("intake")
    system.start("review")
    first = submit_many(system, [str(uuid.uuid4()) for _ in range(10)])
    wait_until(lambda: all_screened(system, list(first.values())), timeout=60)
    system.stop_redis(kill=True)
    system.start_redis(wipe=True)
    later = submit_many(system, [str(uuid.uuid4()) for _ in range(10)])
    ids = list(first.values()) + list(later.values())
    wait_until(lambda: all_screened(system, ids), timeout=60, what="every case opened")
    assert case_count(system)[0] == 20
    redis = system.infra.redis()
    republished = [
        f["subject"]
        for _i, f in redis.xrange(system.infra.stream("intake.events"))
        if f["type"] == "application.submitted"
    ]
    assert set(first.values()) <= set(republished), "the lost events were published again"


def test_sigterm_finishes_an_in_flight_request_before_exiting(system: System) -> None:
    import json
    import socket

    intake = system.start("intake")
    body = json.dumps(application()).encode()
    head = (
        "POST /v1/applications HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {system.company['api_key']}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", intake.port), timeout=30) as sock:
        sock.sendall(head + body[:50])
        threading.Event().wait(0.3)
        assert intake.proc is not None
        intake.proc.send_signal(signal.SIGTERM)
        threading.Event().wait(0.5)
        assert intake.proc.poll() is None, "still running while a request is in flight"
        sock.sendall(body[50:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
    # uvicorn re-raises the signal after its graceful shutdown, hence -15 rather than 0.
    assert intake.proc.wait(timeout=30) in (0, -signal.SIGTERM)


def test_a_dead_letter_is_replayed_after_its_cause_is_fixed(system: System) -> None:
    """A document event for an application review has never seen fails until it is known."""
    import json
    from datetime import UTC, datetime

    from shared.applications import ApplicationBody
    from shared.events import ApplicationSubmitted, DocumentAdded, DocumentRef, new_event

    review = system.start("review", REE_CLAIM_IDLE_MS="500", REE_MAX_DELIVERIES="2")
    application_id = str(uuid.uuid4())
    refs = {
        "application_id": application_id,
        "reference": "REC-2026-999999",
        "company_id": system.company["id"],
    }
    document_id = str(uuid.uuid4())
    redis = system.infra.redis()
    stream = system.infra.stream("intake.events")
    event = new_event(
        "reechannel/intake",
        "application.document_added",
        application_id,
        DocumentAdded(
            **refs,
            document=DocumentRef(
                id=document_id,
                kind="other",
                filename="a.pdf",
                content_type="application/pdf",
                size=1,
                sha256="0" * 64,
                shareable=False,
            ),
        ),
    )
    redis.xadd(stream, event.to_fields())

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "reechannel.cli", *args],
            env=system.infra.env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
        )

    letters = wait_until(
        lambda: json.loads(cli("dlq", "list", "--json").stdout)["dead_letters"],
        timeout=30,
        what="event dead-lettered",
    )
    assert letters[0]["event_id"] == event.id
    assert "no case for application" in letters[0]["error"]

    # The fix: the application the document belongs to arrives after all.
    submitted = new_event(
        "reechannel/intake",
        "application.submitted",
        application_id,
        ApplicationSubmitted(
            **refs,
            submitted_at=datetime.now(UTC),
            status="submitted",
            application=ApplicationBody.model_validate(application()),
        ),
    )
    redis.xadd(stream, submitted.to_fields())
    token = system.officials["eu_officer"]["token"]

    def case() -> dict[str, Any] | None:
        with review.client(token) as c:
            items = c.get("/v1/cases").json()["items"]
            return c.get(f"/v1/cases/{items[0]['id']}").json() if items else None

    wait_until(case, timeout=30, what="case opened")
    replayed = cli("dlq", "replay", "--all", "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)["replayed"][0]["event_id"] == event.id
    opened = wait_until(
        lambda: (c := case()) is not None and c["documents"] and c,
        timeout=30,
        what="replayed document applied",
    )
    assert [d["id"] for d in opened["documents"]] == [document_id]
    assert json.loads(cli("dlq", "list", "--json").stdout)["dead_letters"] == []
