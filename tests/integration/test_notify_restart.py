"""The retry schedule is in the database: restarts, crashes and replicas lose and double nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.notify_support import (
    Application,
    Receiver,
    Reply,
    new_company,
    notify_env,
    register,
    running_receiver,
    wait_for,
    wait_for_log,
)
from tests.support import Infra, ServiceProcess, wait_until


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture
def own(infra: Infra, tmp_path: Path) -> Iterator[Infra]:
    deployment = infra.isolated(tmp_path)
    yield deployment
    deployment.drop_schemas()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_killing_notify_between_attempts_and_mid_request_loses_nothing(
    own: Infra, receiver: Receiver
) -> None:
    env = notify_env(
        own,
        REE_WEBHOOK_RETRY_SCHEDULE="3,3",
        REE_WEBHOOK_TIMEOUT_SECONDS="5",
        REE_DELIVERY_LEASE_MARGIN_SECONDS="1",
    )
    company = new_company(own, "Eta Alloys GmbH")
    failing, crashing, later = (Application(own, company) for _ in range(3))
    box = receiver.mailbox(
        Reply(500, only_if=failing.id),
        # Answered only after notify is dead: this attempt is never recorded.
        Reply(200, delay=3, only_if=crashing.id),
    )
    notify = ServiceProcess("notify", env).start()
    try:
        with notify.client(company["api_key"]) as c:
            endpoint = register(c, box, ["application.status_changed"])
            failing.status_changed("submitted", "eu_screening")
            crashing.status_changed("submitted", "eu_screening")

            def first_attempt_logged_and_second_in_flight() -> bool:
                log = c.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries").json()
                attempted = [d for d in log["items"] if d["attempts"]]
                return len(attempted) == 1 and any(
                    r.json["data"]["application_id"] == crashing.id for r in box.all()
                )

            wait_until(first_attempt_logged_and_second_in_flight, what="one attempt each")
        notify.kill()
        killed_at = datetime.now(UTC)
        later.status_changed("submitted", "eu_screening")  # waits in Redis meanwhile
        notify.start()
        with notify.client(company["api_key"]) as c:
            log = wait_for_log(c, endpoint["id"], 3)
    finally:
        notify.stop()

    by_application = {d["application_id"]: d for d in log}
    retried = by_application[failing.id]
    assert [a["status_code"] for a in retried["attempts"]] == [500, 200]
    assert at(retried["attempts"][0]["attempted_at"]) < killed_at
    assert at(retried["attempts"][1]["attempted_at"]) > killed_at

    def requests_for(app: Application) -> list[Any]:
        return [r for r in box.all() if r.json["data"]["application_id"] == app.id]

    assert [r.status for r in requests_for(failing)] == [500, 200]
    assert {r.webhook_id for r in requests_for(failing)} == {retried["webhook_id"]}
    # The attempt cut short by the crash is made again, with the same webhook-id.
    crashed = by_application[crashing.id]
    assert {r.webhook_id for r in requests_for(crashing)} == {crashed["webhook_id"]}
    assert len(requests_for(crashing)) == 2
    assert [a["status_code"] for a in crashed["attempts"]] == [200]
    assert [r.status for r in requests_for(later)] == [200]
    assert all(r.verified for r in box.all())


@pytest.fixture(scope="module")
def replicated(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    deployment = infra.isolated(Path(tmp_path_factory.mktemp("replicas")))
    yield deployment
    deployment.drop_schemas()


@pytest.fixture(scope="module")
def replicas(replicated: Infra) -> Iterator[list[ServiceProcess]]:
    env = notify_env(
        replicated,
        REE_WEBHOOK_RETRY_SCHEDULE="1,1,1,1,1,1",
        REE_WEBHOOK_DISABLE_FAILING_AFTER_SECONDS="2",
    )
    services = [ServiceProcess("notify", env).start() for _ in range(2)]
    yield services
    for service in services:
        service.stop()


def test_two_replicas_send_each_message_once_and_in_order(
    replicas: list[ServiceProcess], replicated: Infra, receiver: Receiver
) -> None:
    own = replicated
    company = new_company(own, "Theta Wind AS")
    box = receiver.mailbox(*(Reply(503) for _ in range(3)))
    steps = ["eu_screening", "queued", "cn_review", "awaiting_applicant", "cn_review"]
    with replicas[0].client(company["api_key"]) as c:
        endpoint = register(c, box, ["application.status_changed"])
        applications = [Application(own, company) for _ in range(6)]
        for old, new in zip(["submitted", *steps], steps, strict=False):
            for app in applications:
                app.status_changed(old, new)
        wait_for_log(c, endpoint["id"], len(steps) * len(applications))
    successes = box.successes()
    counted = Counter(r.webhook_id for r in successes)
    assert len(counted) == len(steps) * len(applications)
    assert set(counted.values()) == {1}
    for app in applications:
        received = [r.json["data"] for r in successes if r.json["data"]["application_id"] == app.id]
        assert [d["status"] for d in received] == steps


def test_an_endpoint_failing_for_too_long_is_disabled_and_the_applicant_is_told(
    replicas: list[ServiceProcess], replicated: Infra, receiver: Receiver
) -> None:
    own = replicated
    company = new_company(own, "Iota Motors SpA")
    box = receiver.mailbox(*(Reply(500) for _ in range(20)))
    with replicas[1].client(company["api_key"]) as c:
        endpoint = register(c, box, ["application.status_changed"])
        Application(own, company).status_changed("submitted", "eu_screening")

        def disabled() -> dict[str, Any] | None:
            shown: dict[str, Any] = c.get(f"/v1/webhook-endpoints/{endpoint['id']}").json()
            return shown if shown["status"] == "disabled" else None

        shown = wait_for(disabled, what="the failing endpoint disabled")
        [delivery] = wait_for_log(c, endpoint["id"], 1, status="failed")
    assert "failed since" in shown["disabled_reason"] and shown["disabled_at"]
    assert delivery["attempts"][-1]["outcome"] == "endpoint_disabled"
    assert at(shown["disabled_at"]) >= at(shown["failing_since"])
