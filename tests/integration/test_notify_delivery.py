"""Webhook deliveries from events: signatures, retries, order, the log, redelivery and recovery."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx
import pytest
import standardwebhooks

from tests.integration.conftest import application
from tests.integration.notify_support import (
    Application,
    Receiver,
    Reply,
    deliveries,
    new_company,
    notify_env,
    published_together,
    register,
    running_receiver,
    wait_for,
    wait_for_log,
)
from tests.support import Infra, ServiceProcess, wait_until

TIMEOUT_SECONDS = 2


@pytest.fixture(scope="module")
def notify(infra: Infra) -> Iterator[ServiceProcess]:
    env = notify_env(infra, REE_WEBHOOK_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS))
    service = ServiceProcess("notify", env).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture
def company(infra: Infra) -> dict[str, Any]:
    return new_company(infra, "Epsilon Drives GmbH")


@pytest.fixture
def client(notify: ServiceProcess, company: dict[str, Any]) -> Iterator[httpx.Client]:
    with notify.client(company["api_key"]) as c:
        yield c


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_every_webhook_type_is_signed_and_carries_only_what_the_applicant_may_see(
    client: httpx.Client, receiver: Receiver, company: dict[str, Any], infra: Infra
) -> None:
    box = receiver.mailbox()
    endpoint = register(client, box)
    approved, refused = Application(infra, company), Application(infra, company)
    approved.received()
    approved.status_changed("submitted", "eu_screening")
    approved.information_requested()
    approved.decided("approved")
    approved.licence_issued()
    refused.decided("refused")
    refused.decided("not_admitted")  # told through its state change, not a webhook of its own

    log = wait_for_log(client, endpoint["id"], 6)
    assert len(log) == 6
    assert all(r.verified for r in box.all())
    received = {r.json["type"]: r for r in box.successes()}
    assert sorted(received) == sorted(
        [
            "application.received",
            "application.status_changed",
            "application.information_requested",
            "application.approved",
            "application.refused",
            "licence.issued",
        ]
    )
    for request in received.values():
        body = standardwebhooks.Webhook(endpoint["secret"]).verify(request.body, request.headers)
        assert set(body) == {"type", "timestamp", "data"}
        assert "company_id" not in body["data"] and "case_id" not in body["data"]
        assert body["data"]["application_id"] in (approved.id, refused.id)
        tampered = request.body.replace(b'"data":{', b'"data":{"x":1,', 1)
        with pytest.raises(standardwebhooks.WebhookVerificationError):
            standardwebhooks.Webhook(endpoint["secret"]).verify(tampered, request.headers)
    decided = received["application.approved"].json["data"]
    assert "detail" not in decided and decided["decision"] == "approved"
    changed = received["application.status_changed"].json["data"]
    assert "action" not in changed and changed["status"] == "eu_screening"
    assert received["licence.issued"].json["data"]["licence"]["number"].startswith("LIC-")
    assert {r.webhook_id for r in received.values()} == {d["webhook_id"] for d in log}


def test_an_endpoint_gets_only_the_types_it_chose_and_only_its_own_company(
    client: httpx.Client, receiver: Receiver, company: dict[str, Any], infra: Infra
) -> None:
    licences, everything = receiver.mailbox(), receiver.mailbox()
    endpoint = register(client, licences, ["licence.issued"])
    stranger = new_company(infra, "Zeta Robotics BV")
    with httpx.Client(
        base_url=str(client.base_url), headers={"Authorization": f"Bearer {stranger['api_key']}"}
    ) as other:
        theirs = register(other, everything)
        app = Application(infra, company)
        app.received()
        app.status_changed("submitted", "eu_screening")
        app.licence_issued()
        strangers_app = Application(infra, stranger)
        strangers_app.received()
        wait_for_log(client, endpoint["id"], 1)
        wait_for_log(other, theirs["id"], 1)
    assert [r.json["type"] for r in licences.all()] == ["licence.issued"]
    assert [r.json["data"]["application_id"] for r in everything.all()] == [strangers_app.id]


def test_one_read_of_many_companies_events_reaches_each_endpoint_that_chose_the_type(
    client: httpx.Client, receiver: Receiver, company: dict[str, Any], infra: Infra
) -> None:
    # The consumer stores a whole read at once (endpoints of every company in it, messages,
    # deliveries): each event must still reach exactly its own company's subscribed endpoints.
    everything, licences = receiver.mailbox(), receiver.mailbox()
    register(client, everything)
    register(client, licences, ["licence.issued"])
    other, silent = new_company(infra, "Eta Motors SE"), new_company(infra, "Theta Cells AB")
    theirs = receiver.mailbox()
    with httpx.Client(
        base_url=str(client.base_url), headers={"Authorization": f"Bearer {other['api_key']}"}
    ) as other_client:
        register(other_client, theirs, ["application.status_changed"])
    ours = [Application(infra, company) for _ in range(3)]
    others = [Application(infra, other) for _ in range(3)]
    nobodys = Application(infra, silent)  # no endpoint: stored, sent nowhere
    with published_together(infra):
        for a, b in zip(ours, others, strict=True):
            a.received()
            b.received()
            a.status_changed("submitted", "eu_screening")
            b.status_changed("submitted", "eu_screening")
            a.licence_issued()
            nobodys.status_changed("submitted", "eu_screening")

    wait_for(lambda: len(everything.successes()) >= 9 or None, "9 webhooks of company one")
    wait_for(lambda: len(theirs.successes()) >= 3 or None, "3 webhooks of company two")
    wait_for(lambda: len(licences.successes()) >= 3 or None, "3 licence webhooks")
    time.sleep(1)  # nothing more arrives
    got = sorted((r.json["data"]["application_id"], r.json["type"]) for r in everything.all())
    assert got == sorted(
        (a.id, t)
        for a in ours
        for t in ("application.received", "application.status_changed", "licence.issued")
    )
    assert sorted(r.json["data"]["application_id"] for r in licences.all()) == sorted(
        a.id for a in ours
    )
    assert {r.json["type"] for r in licences.all()} == {"licence.issued"}
    assert sorted(r.json["data"]["application_id"] for r in theirs.all()) == sorted(
        b.id for b in others
    )
    assert {r.json["type"] for r in theirs.all()} == {"application.status_changed"}
    assert all(r.verified for box in (everything, licences, theirs) for r in box.all())


def test_during_a_secret_rotation_the_old_and_the_new_secret_both_verify(
    client: httpx.Client, receiver: Receiver, company: dict[str, Any], infra: Infra
) -> None:
    box = receiver.mailbox()
    endpoint = register(client, box, ["application.status_changed"])
    rotated = client.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != endpoint["secret"]
    assert at(rotated.json()["previous_secret_expires_at"]) > datetime.now(UTC) + timedelta(
        hours=23
    )
    shown = client.get(f"/v1/webhook-endpoints/{endpoint['id']}").json()
    assert "secret" not in shown and shown["previous_secret_expires_at"]

    Application(infra, company).status_changed("submitted", "eu_screening")
    wait_for_log(client, endpoint["id"], 1)
    [request] = box.all()
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    for secret in (endpoint["secret"], new_secret):
        standardwebhooks.Webhook(secret).verify(request.body, request.headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(new_secret).verify(request.body + b" ", request.headers)


def test_a_receiver_failing_three_times_gets_the_message_once_with_one_webhook_id(
    client: httpx.Client, receiver: Receiver, company: dict[str, Any], infra: Infra
) -> None:
    box = receiver.mailbox(500, 503, 502)
    endpoint = register(client, box, ["application.status_changed"])
    Application(infra, company).status_changed("submitted", "eu_screening")

    [delivery] = wait_for_log(client, endpoint["id"], 1)
    requests = box.all()
    assert [r.status for r in requests] == [500, 503, 502, 200]
    assert len(box.successes()) == 1
    assert {r.webhook_id for r in requests} == {delivery["webhook_id"]}
    assert all(r.verified for r in requests)
    assert len({r.body for r in requests}) == 1

    attempts = delivery["attempts"]
    assert [a["number"] for a in attempts] == [1, 2, 3, 4]
    assert [a["status_code"] for a in attempts] == [500, 503, 502, 200]
    assert [a["outcome"] for a in attempts] == ["retrying"] * 3 + ["succeeded"]
    assert all(a["duration_ms"] >= 0 and a["error"] is None for a in attempts)
    for earlier, later in pairwise(attempts):
        assert earlier["next_retry_at"] is not None
        assert at(later["attempted_at"]) >= at(earlier["next_retry_at"])
    assert attempts[-1]["next_retry_at"] is None
    assert delivery["status"] == "succeeded" and delivery["attempt_count"] == 4
    assert client.get(f"/v1/webhook-endpoints/{endpoint['id']}").json()["failing_since"] is None


def test_a_receiver_that_keeps_failing_is_given_up_after_the_last_retry(
    client: httpx.Client, receiver: Receiver, company: dict[str, Any], infra: Infra
) -> None:
    box = receiver.mailbox(*[500] * 10)
    endpoint = register(client, box, ["application.status_changed"])
    Application(infra, company).status_changed("submitted", "eu_screening")

    [delivery] = wait_for_log(client, endpoint["id"], 1, status="failed")
    # The test schedule has three waits: four attempts in all.
    assert [a["outcome"] for a in delivery["attempts"]] == ["retrying"] * 3 + ["failed"]
    assert len(box.all()) == 4
    shown = client.get(f"/v1/webhook-endpoints/{endpoint['id']}").json()
    assert shown["status"] == "active" and shown["failing_since"] is not None


def test_a_slow_receiver_times_out_and_is_tried_again(
    client: httpx.Client, receiver: Receiver, company: dict[str, Any], infra: Infra
) -> None:
    box = receiver.mailbox(Reply(200, delay=TIMEOUT_SECONDS + 1.5))
    endpoint = register(client, box, ["application.status_changed"])
    Application(infra, company).status_changed("submitted", "eu_screening")

    [delivery] = wait_for_log(client, endpoint["id"], 1)
    first, second = delivery["attempts"]
    assert first["status_code"] is None and "Timed out" in first["error"]
    assert first["duration_ms"] >= TIMEOUT_SECONDS * 1000
    assert second["status_code"] == 200


def test_webhooks_to_one_receiver_reuse_a_kept_alive_connection(
    client: httpx.Client, receiver: Receiver, company: dict[str, Any], infra: Infra
) -> None:
    # Each answer's body is read, so its connection goes back to the pool instead of being
    # closed; one application's webhooks go one after the other, so one connection suffices.
    box = receiver.mailbox()
    endpoint = register(client, box)
    app = Application(infra, company)
    app.received()
    app.status_changed("submitted", "eu_screening")
    app.information_requested()
    app.status_changed("awaiting_applicant", "eu_screening")
    wait_for_log(client, endpoint["id"], 4)
    assert len({r.peer_port for r in box.all()}) == 1


def test_retry_after_is_honoured_when_it_asks_for_a_longer_wait(
    client: httpx.Client, receiver: Receiver, company: dict[str, Any], infra: Infra
) -> None:
    box = receiver.mailbox(Reply(503, {"Retry-After": "3"}), Reply(429, {"Retry-After": "0"}))
    endpoint = register(client, box, ["application.status_changed"])
    Application(infra, company).status_changed("submitted", "eu_screening")

    [delivery] = wait_for_log(client, endpoint["id"], 1)
    first, second, third = delivery["attempts"]
    # The schedule alone would wait about a second (with jitter, at most 1.2 s).
    assert at(first["next_retry_at"]) - at(first["attempted_at"]) >= timedelta(seconds=3)
    assert at(second["attempted_at"]) >= at(first["next_retry_at"])
    # A Retry-After shorter than the schedule does not hurry the next attempt.
    assert at(second["next_retry_at"]) - at(second["attempted_at"]) >= timedelta(seconds=0.8)
    assert third["status_code"] == 200


def test_410_gone_disables_the_endpoint_and_the_applicant_sees_why(
    client: httpx.Client, receiver: Receiver, company: dict[str, Any], infra: Infra
) -> None:
    box = receiver.mailbox(410)
    endpoint = register(client, box, ["application.status_changed"])
    app = Application(infra, company)
    app.status_changed("submitted", "eu_screening")

    [delivery] = wait_for_log(client, endpoint["id"], 1, status="failed")
    assert [a["outcome"] for a in delivery["attempts"]] == ["endpoint_disabled"]
    shown = client.get(f"/v1/webhook-endpoints/{endpoint['id']}").json()
    assert shown["status"] == "disabled"
    assert "410" in shown["disabled_reason"] and shown["disabled_at"]
    listed = {e["id"]: e for e in client.get("/v1/webhook-endpoints").json()["items"]}
    assert listed[endpoint["id"]]["status"] == "disabled"

    assert client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test").status_code == 409
    assert client.post(f"/v1/deliveries/{delivery['id']}/redeliver").status_code == 409
    assert len(box.all()) == 1


def test_one_applications_events_reach_an_endpoint_in_order(
    client: httpx.Client, receiver: Receiver, company: dict[str, Any], infra: Infra
) -> None:
    app, other = Application(infra, company), Application(infra, company)
    box = receiver.mailbox(Reply(500, only_if=app.id), Reply(500, only_if=app.id))
    endpoint = register(client, box, ["application.status_changed"])
    steps = [("submitted", "eu_screening"), ("eu_screening", "queued"), ("queued", "cn_review")]
    for old, new in steps:
        app.status_changed(old, new)
    other.status_changed("submitted", "eu_screening")

    wait_for_log(client, endpoint["id"], 4)
    mine = [r for r in box.all() if r.json["data"]["application_id"] == app.id]
    assert [r.json["data"]["status"] for r in mine] == [
        "eu_screening",
        "eu_screening",
        "eu_screening",
        "queued",
        "cn_review",
    ]
    assert [r.status for r in mine] == [500, 500, 200, 200, 200]
    # Another application's message is not held back by this one's failures.
    assert [r.status for r in box.all() if r.json["data"]["application_id"] == other.id] == [200]


def test_redelivery_sends_one_message_again_with_the_same_webhook_id(
    client: httpx.Client, receiver: Receiver, company: dict[str, Any], infra: Infra
) -> None:
    box = receiver.mailbox()
    endpoint = register(client, box, ["application.status_changed"])
    Application(infra, company).status_changed("submitted", "eu_screening")
    [delivery] = wait_for_log(client, endpoint["id"], 1)

    again = client.post(f"/v1/deliveries/{delivery['id']}/redeliver")
    assert again.status_code == 202, again.text
    assert again.json()["webhook_id"] == delivery["webhook_id"]
    wait_until(lambda: len(box.successes()) == 2, what="the redelivered message")

    def redelivered() -> dict[str, Any] | None:
        shown: dict[str, Any] = client.get(f"/v1/deliveries/{delivery['id']}").json()
        done = shown["status"] == "succeeded" and len(shown["attempts"]) == 2
        return shown if done else None

    after = wait_for(redelivered, what="the second attempt in the log")
    assert [r.webhook_id for r in box.all()] == [delivery["webhook_id"]] * 2
    assert [a["number"] for a in after["attempts"]] == [1, 2]
    assert client.post("/v1/deliveries/no-such-delivery/redeliver").status_code == 404


def test_recovery_sends_again_everything_since_a_time_in_order(
    client: httpx.Client, receiver: Receiver, company: dict[str, Any], infra: Infra
) -> None:
    types = ["application.status_changed", "licence.issued"]
    box, witness_box = receiver.mailbox(410), receiver.mailbox()
    endpoint = register(client, box, types)
    witness = register(client, witness_box, types)
    app = Application(infra, company)
    app.status_changed("submitted", "eu_screening")
    wait_for_log(client, endpoint["id"], 1, status="failed")
    # While the endpoint is disabled, events go on happening and are kept.
    app.status_changed("eu_screening", "queued")
    app.information_requested()  # a type these endpoints did not choose
    app.licence_issued()
    wait_for_log(client, witness["id"], 3)
    assert len(deliveries(client, endpoint["id"])) == 1
    recover = {"since": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()}
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    assert client.post(path + "/recover", json=recover).status_code == 409

    assert client.post(path + "/enable").json()["status"] == "active"
    answer = client.post(path + "/recover", json=recover)
    assert answer.status_code == 202, answer.text
    assert answer.json()["scheduled"] == 3

    log = wait_for_log(client, endpoint["id"], 3)
    received = box.successes()
    assert [r.json["type"] for r in received] == [
        "application.status_changed",
        "application.status_changed",
        "licence.issued",
    ]
    assert [r.json["data"].get("status") for r in received][:2] == ["eu_screening", "queued"]
    assert all(r.verified for r in received)
    first = next(d for d in log if d["attempts"][0]["status_code"] == 410)
    assert received[0].webhook_id == first["webhook_id"]

    again = client.post(path + "/recover", json={**recover, "failed_only": True})
    assert again.json()["scheduled"] == 0
    naive = client.post(path + "/recover", json={"since": "2026-01-01T00:00:00"})
    assert naive.status_code == 422


def test_metrics_count_deliveries_by_outcome_and_the_latency_to_success(
    notify: ServiceProcess,
    client: httpx.Client,
    receiver: Receiver,
    infra: Infra,
    company: dict[str, Any],
) -> None:
    box = receiver.mailbox()
    endpoint = register(client, box, ["application.status_changed"])
    Application(infra, company).status_changed("submitted", "eu_screening")
    wait_for_log(client, endpoint["id"], 1)
    text = httpx.get(notify.url + "/metrics").text
    assert 'reechannel_webhook_deliveries_total{outcome="succeeded"}' in text
    count = next(
        line
        for line in text.splitlines()
        if line.startswith("reechannel_webhook_delivery_latency_seconds_count")
    )
    assert float(count.split()[-1]) >= 1


def test_an_application_submitted_at_intake_reaches_the_applicants_endpoint(
    intake: ServiceProcess,
    client: httpx.Client,
    receiver: Receiver,
    company: dict[str, Any],
) -> None:
    box = receiver.mailbox()
    endpoint = register(client, box, ["application.received"])
    with intake.client(company["api_key"]) as applicant:
        submitted = applicant.post("/v1/applications", json=application())
        assert submitted.status_code == 201, submitted.text

    wait_for_log(client, endpoint["id"], 1)
    [request] = box.all()
    body = standardwebhooks.Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert body["type"] == "application.received"
    assert body["data"]["application_id"] == submitted.json()["id"]
    assert body["data"]["reference"] == submitted.json()["reference"]
    # The application itself (goods, values, parties) is not repeated in the webhook.
    assert "goods" not in request.body.decode() and "Bosch" not in request.body.decode()
