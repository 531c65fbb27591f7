"""The security tests' own deployment: the three services on isolated schemas, and a world.

The world holds the callers of every kind (tests/security/matrix.py) and the objects the
routes act on, each in the state the matrix needs: applicant A's applications, cases in EU
screening, queued, sent to China and approved, licences, webhook endpoints and a delivery.
Services log at DEBUG so that test_secrets can read every line they wrote.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.config import CommonSettings
from shared.directory import open_directory
from tests.integration.conftest import application
from tests.integration.notify_support import (
    FAST,
    LOOPBACK,
    Mailbox,
    Receiver,
    register,
    running_receiver,
    wait_for_log,
)
from tests.support import Infra, ServiceProcess, wait_until

SERVICES = ("intake", "review", "notify")
CONSOLE_COOKIE = "ree_console"


@dataclass(repr=False)
class World:
    infra: Infra
    services: dict[str, ServiceProcess]
    receiver: Receiver
    mailbox: Mailbox
    # kind -> the credential it calls with; "revoked" differs per service (see credential()).
    credentials: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    objects: dict[str, Any] = field(default_factory=dict)
    pools: dict[str, list[str]] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)

    def credential(self, kind: str, service: str) -> str | None:
        if kind == "none":
            return None
        if kind == "revoked":
            return self.credentials["revoked_official" if service == "review" else "revoked_key"]
        return self.credentials[kind]

    def client(self, service: str, kind: str = "none") -> httpx.Client:
        return self.services[service].client(self.credential(kind, service))

    def fresh(self, pool: str) -> str:
        try:
            return self.pools[pool].pop()
        except (KeyError, IndexError):
            raise AssertionError(f"the world has no fresh {pool} left; enlarge the pool") from None

    def csrf(self, token: str) -> str:
        secret = CommonSettings.model_validate(self.infra.env()).token_secret.encode()
        return hmac.new(secret, b"console-csrf|" + token.encode(), hashlib.sha256).hexdigest()


def _settings(infra: Infra) -> CommonSettings:
    return CommonSettings(
        DATABASE_URL=infra.database_url,
        REE_DATA_DIR=infra.data_dir,
        REE_SCHEMA_PREFIX=infra.prefix,
    )


def _issue_credentials(world: World) -> None:
    directory = open_directory(_settings(world.infra))
    try:
        for kind, name in (("applicant_a", "Alpha Magnets AG"), ("applicant_b", "Beta Wind SE")):
            company, key = directory.create_company(name, "DE" + uuid.uuid4().hex[:12].upper())
            world.credentials[kind] = key
            world.ids[kind] = company.id
        for side in ("EU", "CN"):
            for role in ("officer", "supervisor"):
                kind = f"{side.lower()}_{role}"
                official, token = directory.create_official(f"{side} {role}", side, role)
                world.credentials[kind] = token
                world.ids[kind] = official.id
        world.credentials["operator"] = directory.create_operator("security tests")
        gone, key = directory.create_company("Gone GmbH", "DE" + uuid.uuid4().hex[:12].upper())
        directory.revoke(gone.id)
        world.credentials["revoked_key"] = key
        official, token = directory.create_official("Former EU supervisor", "EU", "supervisor")
        directory.revoke(official.id)
        world.credentials["revoked_official"] = token
    finally:
        directory.engine.dispose()
    world.secrets += list(world.credentials.values())


def _submit(world: World, count: int) -> list[dict[str, Any]]:
    with world.client("intake", "applicant_a") as c:
        made = []
        for _ in range(count):
            r = c.post("/v1/applications", json=application())
            assert r.status_code == 201, r.text
            made.append(r.json())
    return made


def _cases(world: World, apps: list[dict[str, Any]]) -> list[str]:
    """The review cases of the applications, once review has opened them all."""
    wanted = {a["reference"] for a in apps}

    def opened() -> dict[str, str] | None:
        found: dict[str, str] = {}
        with world.client("review", "eu_officer") as c:
            offset = 0
            while True:
                page = c.get("/v1/cases", params={"limit": 200, "offset": offset}).json()
                found |= {i["reference"]: i["id"] for i in page["items"]}
                offset += 200
                if offset >= page["total"]:
                    break
        return found if wanted <= set(found) else None

    found = wait_until(opened, timeout=30, what="review opened every case")
    return [found[a["reference"]] for a in apps]


def act(world: World, kind: str, case_id: str, action: str, **params: Any) -> dict[str, Any]:
    with world.client("review", kind) as c:
        version = c.get(f"/v1/cases/{case_id}").json()["version"]
        r = c.post(
            f"/v1/cases/{case_id}/actions",
            json={"action": action, **params},
            headers={"If-Match": str(version)},
        )
    assert r.status_code == 200, r.text
    return dict(r.json())


def send_to_china(world: World, case_ids: list[str]) -> int:
    for case_id in case_ids:
        act(world, "eu_officer", case_id, "admit")
    with world.client("review", "eu_supervisor") as c:
        r = c.post("/v1/priority-lists", json={"case_ids": case_ids})
    assert r.status_code == 201, r.text
    return int(r.json()["number"])


def approve(world: World, case_id: str, number: str) -> None:
    act(world, "cn_officer", case_id, "acknowledge", accepted_on=date.today().isoformat())
    act(
        world,
        "cn_officer",
        case_id,
        "approve",
        licence={
            "type": "annual",
            "number": number,
            "valid_from": date.today().isoformat(),
            "lines": [{"line": 1, "approved_quantity_kg": 100}],
        },
    )


def _in_review(world: World) -> bool:
    """Whether review lists the world's documents in their cases (from intake's events)."""
    with world.client("review", "eu_officer") as c:
        listed = {
            d["id"]
            for case in ("case_main", "case_cn")
            for d in c.get(f"/v1/cases/{world.ids[case]}").json()["documents"]
        }
    return {world.ids[d] for d in ("document", "document_cn", "document_cn_private")} <= listed


def _build(world: World) -> None:
    _issue_credentials(world)
    names = ["main", "asked", "withdraw", "cn", "licence", "licence_revoke"]
    pools = {"screening": 4, "queued": 2, "cn_review": 2}
    apps = _submit(world, len(names) + sum(pools.values()))
    cases = _cases(world, apps)
    for name, app, case_id in zip(names, apps, cases, strict=False):
        world.ids[f"app_{name}"] = app["id"]
        world.ids[f"case_{name}"] = case_id
    rest = list(cases[len(names) :])
    for pool, size in pools.items():
        world.pools[pool], rest = rest[:size], rest[size:]
    world.ids["list"] = str(
        send_to_china(
            world,
            [world.ids[f"case_{n}"] for n in ("cn", "licence", "licence_revoke")]
            + world.pools["cn_review"],
        )
    )
    for case_id in world.pools["queued"]:
        act(world, "eu_officer", case_id, "admit")
    for name in ("licence", "licence_revoke"):
        world.ids[name] = f"LIC-SEC-{uuid.uuid4().hex[:8]}"
        approve(world, world.ids[f"case_{name}"], world.ids[name])
    act(world, "eu_officer", world.ids["case_asked"], "request_information", question="Why?")
    with world.client("intake", "applicant_a") as c:
        doc = c.post(
            f"/v1/applications/{world.ids['app_main']}/documents",
            files={"file": ("contract.pdf", b"%PDF-1.4\n%%EOF\n")},
            data={"kind": "contract"},
        )
        assert doc.status_code == 201, doc.text
        world.ids["document"] = doc.json()["id"]

        def asked() -> str | None:
            view = c.get(f"/v1/applications/{world.ids['app_asked']}").json()
            open_requests = [r for r in view["information_requests"] if r["status"] == "open"]
            return open_requests[0]["id"] if open_requests else None

        world.ids["request"] = wait_until(asked, timeout=30, what="the request reached intake")
        for name, shareable in (("document_cn", "true"), ("document_cn_private", "false")):
            doc = c.post(
                f"/v1/applications/{world.ids['app_cn']}/documents",
                files={"file": (f"{name}.pdf", f"%PDF-1.4\n% {name}\n%%EOF\n".encode())},
                data={"kind": "contract", "shareable": shareable},
            )
            assert doc.status_code == 201, doc.text
            world.ids[name] = doc.json()["id"]
    wait_until(lambda: _in_review(world), timeout=30, what="review lists the documents")
    with world.client("review", "eu_supervisor") as c:
        world.objects["rules"] = c.get("/v1/priority/rules").json()
    with world.client("notify", "applicant_a") as c:
        main = register(c, world.mailbox)
        world.ids["endpoint"] = main["id"]
        world.ids["endpoint_delete"] = register(c, world.mailbox)["id"]
        world.secrets += world.mailbox.secrets
        test = c.post(f"/v1/webhook-endpoints/{main['id']}/test")
        assert test.status_code == 202, test.text
        world.ids["delivery"] = test.json()["id"]
        wait_for_log(c, main["id"], 1)


@pytest.fixture(scope="session")
def world(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    own = infra.isolated(Path(tmp_path_factory.mktemp("security")))
    # Fuzzing sends thousands of requests with one credential: the rate limit has its own test.
    env = own.env(**LOOPBACK, **FAST, REE_LOG_LEVEL="DEBUG", REE_RATE_LIMIT_PER_MINUTE="1000000")
    services = {name: ServiceProcess(name, env) for name in SERVICES}
    try:
        for service in services.values():
            service.start()
        with running_receiver() as receiver:
            built = World(own, services, receiver, receiver.mailbox())
            _build(built)
            yield built
    finally:
        for service in services.values():
            service.stop()
        own.drop_schemas()
