"""Applicants manage webhook endpoints; URLs that point inside a network are refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks

from reechannel.settings import OperatorSettings
from reechannel.supervisor import EMBEDDED_REDIS_PORT, NOTIFY_LOCAL_DEFAULTS
from tests.integration.notify_support import (
    FAST,
    Application,
    Receiver,
    new_company,
    register,
    running_receiver,
    wait_for,
    wait_for_log,
)
from tests.integration.notify_support import (
    notify_env as loopback_env,
)
from tests.support import Infra, ServiceProcess, operator

CHANGE = ["application.status_changed"]


@pytest.fixture(scope="module")
def notify(infra: Infra) -> Iterator[ServiceProcess]:
    service = ServiceProcess("notify", loopback_env(infra)).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture(scope="module")
def strict_infra(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    own = infra.isolated(Path(tmp_path_factory.mktemp("strict")))
    yield own
    own.drop_schemas()


@pytest.fixture(scope="module")
def strict(strict_infra: Infra) -> Iterator[ServiceProcess]:
    """Notify as deployed: no operator exception, so HTTPS to public addresses only."""
    env = strict_infra.env(REE_DELIVERY_POLL_SECONDS="0.2", REE_WEBHOOK_TIMEOUT_SECONDS="5")
    service = ServiceProcess("notify", env).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def strict_company(strict_infra: Infra) -> dict[str, Any]:
    return new_company(strict_infra, "Strict GmbH")


@pytest.fixture(scope="module")
def company(infra: Infra) -> dict[str, Any]:
    return new_company(infra, "Gamma Magnets GmbH")


@pytest.fixture(scope="module")
def other_company(infra: Infra) -> dict[str, Any]:
    return new_company(infra, "Delta Turbines SA")


def test_a_new_endpoint_shows_its_secret_once(
    notify: ServiceProcess, receiver: Receiver, company: dict[str, Any]
) -> None:
    box = receiver.mailbox()
    with notify.client(company["api_key"]) as c:
        created = c.post(
            "/v1/webhook-endpoints",
            json={"url": box.url, "event_types": CHANGE, "description": "ERP"},
        )
        assert created.status_code == 201, created.text
        endpoint = created.json()
        assert created.headers["Location"] == f"/v1/webhook-endpoints/{endpoint['id']}"
        assert endpoint["secret"].startswith("whsec_")
        assert endpoint["status"] == "active"
        assert endpoint["event_types"] == CHANGE

        shown = c.get(f"/v1/webhook-endpoints/{endpoint['id']}")
        assert shown.status_code == 200
        assert "secret" not in shown.json()
        assert shown.json()["url"] == box.url
        listed = c.get("/v1/webhook-endpoints").json()["items"]
        assert endpoint["id"] in [e["id"] for e in listed]
        assert all("secret" not in e for e in listed)
        assert endpoint["secret"] not in shown.text + str(listed)


def test_the_list_is_paginated_and_shows_only_your_own_endpoints(
    notify: ServiceProcess, receiver: Receiver, infra: Infra
) -> None:
    mine, theirs = new_company(infra, "Paged One"), new_company(infra, "Paged Two")
    with notify.client(mine["api_key"]) as c, notify.client(theirs["api_key"]) as other:
        ids = {register(c, receiver.mailbox(), CHANGE)["id"] for _ in range(3)}
        register(other, receiver.mailbox(), CHANGE)
        first = c.get("/v1/webhook-endpoints", params={"limit": 2}).json()
        assert len(first["items"]) == 2 and first["next_cursor"]
        second = c.get(
            "/v1/webhook-endpoints", params={"limit": 2, "cursor": first["next_cursor"]}
        ).json()
        assert second["next_cursor"] is None
        assert {e["id"] for e in first["items"] + second["items"]} == ids
        assert c.get("/v1/webhook-endpoints", params={"limit": 0}).status_code == 422
        assert c.get("/v1/webhook-endpoints", params={"cursor": "%%%"}).status_code == 422


def test_another_companys_endpoint_and_deliveries_are_not_found(
    notify: ServiceProcess,
    receiver: Receiver,
    company: dict[str, Any],
    other_company: dict[str, Any],
) -> None:
    with notify.client(company["api_key"]) as c, notify.client(other_company["api_key"]) as other:
        endpoint = register(c, receiver.mailbox(), CHANGE)
        test = c.post(f"/v1/webhook-endpoints/{endpoint['id']}/test")
        assert test.status_code == 202
        base = f"/v1/webhook-endpoints/{endpoint['id']}"
        for method, path, body in [
            ("GET", base, None),
            ("DELETE", base, None),
            ("POST", base + "/rotate-secret", None),
            ("POST", base + "/enable", None),
            ("POST", base + "/test", None),
            ("GET", base + "/deliveries", None),
            ("POST", base + "/recover", {"since": "2026-01-01T00:00:00Z"}),
            ("GET", f"/v1/deliveries/{test.json()['id']}", None),
            ("POST", f"/v1/deliveries/{test.json()['id']}/redeliver", None),
        ]:
            answer = other.request(method, path, json=body)
            assert answer.status_code == 404, (method, path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
        assert c.get(base).json()["status"] == "active"


def test_unknown_event_types_and_malformed_urls_are_refused_naming_the_field(
    notify: ServiceProcess, company: dict[str, Any]
) -> None:
    cases: list[tuple[dict[str, Any], set[str]]] = [
        (
            {"url": "https://93.184.216.34/h", "event_types": ["application.exploded"]},
            {"event_types"},
        ),
        ({"url": "https://93.184.216.34/h", "event_types": []}, {"event_types"}),
        ({"url": "https://93.184.216.34/h", "event_types": ["case.opened"]}, {"event_types"}),
        ({"url": "ftp://93.184.216.34/h", "event_types": CHANGE}, {"url"}),
        ({"url": "not a url", "event_types": CHANGE}, {"url"}),
        ({"url": "https://user:pw@93.184.216.34/h", "event_types": CHANGE}, {"url"}),
        ({"event_types": CHANGE}, {"url"}),
        ({"url": "ftp://x", "event_types": ["nope"]}, {"url", "event_types"}),
    ]
    with notify.client(company["api_key"]) as c:
        before = len(c.get("/v1/webhook-endpoints", params={"limit": 200}).json()["items"])
        for body, fields in cases:
            answer = c.post("/v1/webhook-endpoints", json=body)
            assert answer.status_code == 422, (body, answer.text)
            problem = answer.json()
            assert problem["type"].endswith("validation-failed")
            assert {e["field"] for e in problem["errors"]} == fields, body
        after = len(c.get("/v1/webhook-endpoints", params={"limit": 200}).json()["items"])
    assert after == before


def test_endpoints_are_for_applicants_only(notify: ServiceProcess, infra: Infra) -> None:
    official = operator(
        infra, "official", "create", "--name", "Eva", "--side", "EU", "--role", "officer"
    )
    with notify.client() as anonymous, notify.client(official["token"]) as c:
        assert anonymous.get("/v1/webhook-endpoints").status_code == 401
        assert c.get("/v1/webhook-endpoints").status_code == 403


def test_a_test_event_is_signed_so_that_standard_webhooks_verifies_it(
    notify: ServiceProcess, receiver: Receiver, company: dict[str, Any]
) -> None:
    box = receiver.mailbox()
    with notify.client(company["api_key"]) as c:
        endpoint = register(c, box, CHANGE)
        sent = c.post(f"/v1/webhook-endpoints/{endpoint['id']}/test")
        assert sent.status_code == 202, sent.text
        log = wait_for_log(c, endpoint["id"], 1)
    [request] = box.all()
    assert request.verified and request.status == 200
    assert request.webhook_id == sent.json()["webhook_id"] == log[0]["webhook_id"]
    payload = standardwebhooks.Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "webhook.test"
    assert payload["data"]["endpoint_id"] == endpoint["id"]
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(endpoint["secret"]).verify(
            request.body.replace(b"Test event", b"Fake event"), request.headers
        )


def test_a_deleted_endpoint_is_gone_and_receives_nothing(
    notify: ServiceProcess, receiver: Receiver, infra: Infra
) -> None:
    company = new_company(infra, "Deleting AG")
    deleted_box, kept_box = receiver.mailbox(), receiver.mailbox()
    with notify.client(company["api_key"]) as c:
        deleted = register(c, deleted_box, CHANGE)
        kept = register(c, kept_box, CHANGE)
        assert c.delete(f"/v1/webhook-endpoints/{deleted['id']}").status_code == 204
        assert c.get(f"/v1/webhook-endpoints/{deleted['id']}").status_code == 404
        assert c.delete(f"/v1/webhook-endpoints/{deleted['id']}").status_code == 404
        Application(infra, company).status_changed("submitted", "eu_screening")
        # Both endpoints' deliveries are created in one transaction: once the kept one has
        # its message, the deleted one would have had its own.
        wait_for_log(c, kept["id"], 1)
    assert len(kept_box.successes()) == 1
    assert deleted_box.all() == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.1/",
        "http://[::1]/",
        "https://127.0.0.1/hooks",
        "https://10.0.0.1/hooks",
        "https://[::1]/hooks",
        "https://[::ffff:192.168.1.1]/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/",
        "https://224.0.0.1/",
        "https://[fe80::1]/",
        "https://[fd00::1]/",
        "https://2130706433/",
        "https://localhost/hooks",
        # F7: reserved ::/8 space that a NAT46/SIIT translator maps onto private IPv4.
        "https://[::ffff:0:a9fe:a9fe]/hooks",
        "https://[::ffff:0:7f00:1]/hooks",
        "https://[::2:a9fe:a9fe]/hooks",
        "https://[1::1]/hooks",
    ],
)
def test_private_loopback_and_link_local_targets_are_refused(
    strict: ServiceProcess, strict_company: dict[str, Any], url: str
) -> None:
    with strict.client(strict_company["api_key"]) as c:
        answer = c.post("/v1/webhook-endpoints", json={"url": url, "event_types": CHANGE})
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["url"]


def test_the_operator_setting_allows_only_the_networks_it_names(
    notify: ServiceProcess, company: dict[str, Any]
) -> None:
    with notify.client(company["api_key"]) as c:
        allowed = c.post(
            "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/h", "event_types": CHANGE}
        )
        assert allowed.status_code == 201, allowed.text
        for url in ["http://10.0.0.1/", "https://192.168.0.10/", "http://93.184.216.34/"]:
            refused = c.post("/v1/webhook-endpoints", json={"url": url, "event_types": CHANGE})
            assert refused.status_code == 422, (url, refused.text)


def test_the_url_is_checked_again_at_delivery_time(
    strict: ServiceProcess, strict_infra: Infra, strict_company: dict[str, Any], receiver: Receiver
) -> None:
    """An endpoint accepted under a looser policy gets nothing once the policy refuses it."""
    company = strict_company
    box = receiver.mailbox()
    lenient = ServiceProcess("notify", loopback_env(strict_infra)).start()
    try:
        with lenient.client(company["api_key"]) as c:
            endpoint = register(c, box, CHANGE)
    finally:
        lenient.stop()
    with strict.client(company["api_key"]) as c:
        assert c.post(f"/v1/webhook-endpoints/{endpoint['id']}/test").status_code == 202

        def first_attempt() -> dict[str, Any] | None:
            log = c.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries").json()
            attempts = log["items"][0]["attempts"]
            return attempts[0] if attempts else None

        attempt = wait_for(first_attempt, what="a refused attempt in the log")
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("Refused by the URL policy")
    assert attempt["outcome"] == "retrying"
    assert box.all() == []


def test_reserved_ipv6_space_allowed_once_is_refused_at_delivery_time(
    strict: ServiceProcess, strict_infra: Infra, strict_company: dict[str, Any]
) -> None:
    """An SIIT address (F7) stored under an operator's allowance is not contacted once the
    policy in force refuses it: the attempt is logged as refused and retried."""
    company = strict_company
    lenient = ServiceProcess(
        "notify", loopback_env(strict_infra, REE_WEBHOOK_ALLOWED_NETWORKS="::/8")
    ).start()
    try:
        with lenient.client(company["api_key"]) as c:
            url = "https://[::ffff:0:a9fe:a9fe]/hooks"
            created = c.post("/v1/webhook-endpoints", json={"url": url, "event_types": CHANGE})
            assert created.status_code == 201, created.text
            endpoint = created.json()
    finally:
        lenient.stop()
    with strict.client(company["api_key"]) as c:
        assert c.post(f"/v1/webhook-endpoints/{endpoint['id']}/test").status_code == 202

        def first_attempt() -> dict[str, Any] | None:
            log = c.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries").json()
            attempts = log["items"][0]["attempts"]
            return attempts[0] if attempts else None

        attempt = wait_for(first_attempt, what="a refused attempt in the log")
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("Refused by the URL policy")
    assert "SIIT" in attempt["error"]
    assert attempt["outcome"] == "retrying"


@pytest.fixture(scope="module")
def demo_infra(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    own = infra.isolated(Path(tmp_path_factory.mktemp("demo")))
    yield own
    own.drop_schemas()


@pytest.fixture(scope="module")
def demo(demo_infra: Infra) -> Iterator[ServiceProcess]:
    """Notify with the allowance `make run` gives it (reechannel/supervisor.py)."""
    service = ServiceProcess("notify", demo_infra.env(**{**NOTIFY_LOCAL_DEFAULTS, **FAST})).start()
    yield service
    service.stop()


DEMO_RECEIVER_PORTS = range(9000, 9100)


def test_the_demo_allowance_reaches_the_test_receivers_ports_and_not_the_services(
    demo: ServiceProcess, demo_infra: Infra
) -> None:
    """F17: under `make run` notify delivers to a receiver on loopback ports 9000-9099, and
    refuses (422) a URL on any other loopback port, such as the services' own."""
    company = new_company(demo_infra, "Demo Receiver GmbH")
    with running_receiver(DEMO_RECEIVER_PORTS) as allowed, demo.client(company["api_key"]) as c:
        box = allowed.mailbox()
        endpoint = register(c, box, CHANGE)
        assert c.post(f"/v1/webhook-endpoints/{endpoint['id']}/test").status_code == 202
        wait_for(box.successes, what="the test webhook at the demo receiver's port")
        for port in [*OperatorSettings().ports().values(), EMBEDDED_REDIS_PORT]:
            for host in ["127.0.0.1", "[::1]", "localhost"]:
                url = f"http://{host}:{port}/hooks"
                refused = c.post("/v1/webhook-endpoints", json={"url": url, "event_types": CHANGE})
                assert refused.status_code == 422, (url, refused.text)
                assert [e["field"] for e in refused.json()["errors"]] == ["url"]


def test_the_demo_allowance_does_not_deliver_to_other_loopback_ports(
    demo: ServiceProcess, demo_infra: Infra, receiver: Receiver
) -> None:
    """F17 at delivery time: an endpoint on another loopback port, stored under a wider
    allowance, is not contacted; its attempt is logged as refused by the URL policy."""
    assert receiver.port not in DEMO_RECEIVER_PORTS
    company = new_company(demo_infra, "Port Scan Ltd")
    box = receiver.mailbox()
    lenient = ServiceProcess("notify", loopback_env(demo_infra)).start()
    try:
        with lenient.client(company["api_key"]) as c:
            endpoint = register(c, box, CHANGE)
    finally:
        lenient.stop()
    with demo.client(company["api_key"]) as c:
        assert c.post(f"/v1/webhook-endpoints/{endpoint['id']}/test").status_code == 202

        def first_attempt() -> dict[str, Any] | None:
            log = c.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries").json()
            attempts = log["items"][0]["attempts"]
            return attempts[0] if attempts else None

        attempt = wait_for(first_attempt, what="a refused attempt in the log")
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("Refused by the URL policy")
    assert f"other ports than {receiver.port} only" in attempt["error"]
    assert box.all() == []
