"""The security tests' own deployment: the three services on isolated schemas, and a world.

The world holds the callers of every kind (tests/security/matrix.py) and the objects the
routes act on, each in the state the matrix needs: applicant A's applications, cases in EU
screening, queued, sent to China and approved, licences, webhook endpoints and a delivery.
Services log at DEBUG so that test_secrets can read every line they wrote.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from shared.accounts.invitations import Invitations
from shared.accounts.passwords import Passwords
from shared.accounts.sessions import COOKIE_NAME, PORTAL_COOKIE_NAME, Sessions
from shared.accounts.web import csrf_token
from shared.config import CommonSettings
from shared.db import make_engine, session_scope
from shared.directory import DIRECTORY, open_directory
from tests.integration.conftest import application
from tests.integration.notify_support import (
    FAST,
    LOOPBACK,
    Mailbox,
    Receiver,
    register,
    running_receiver,
    staff_member,
    wait_for_log,
)
from tests.people import enrol_official, enrol_staff
from tests.security.matrix import OFFICIALS, STAFF
from tests.support import Infra, ServiceProcess, wait_until

SERVICES = ("intake", "review", "notify")
CONSOLE_COOKIE = COOKIE_NAME
PORTAL_COOKIE = PORTAL_COOKIE_NAME


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
    # kind -> the console session it calls with (officials, and "revoked": one ended by
    # revoking its official), and each session secret's server-side id (for CSRF tokens).
    sessions: dict[str, str] = field(default_factory=dict)
    session_ids: dict[str, str] = field(default_factory=dict)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    engine: Engine | None = None  # the credential directory's, to open sessions

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

    def console_cookie(self, kind: str) -> str | None:
        """What a caller of this kind holds as the console's cookie: an official's session,
        or anyone else's credential (which opens nothing there)."""
        return self.sessions.get(kind) or self.credential(kind, "review")

    def portal_cookie(self, kind: str) -> str | None:
        """What a caller of this kind holds as the portal's cookie: a staff member's session
        (applicant A's and B's), or anyone else's credential (which opens nothing there)."""
        return self.sessions.get(f"portal_{kind}") or self.credential(kind, "intake")

    def csrf(self, session_secret: str) -> str:
        """The CSRF token of the console session of this secret (of none: a wrong one)."""
        key = CommonSettings.model_validate(self.infra.env()).token_secret
        return csrf_token(key, self.session_ids.get(session_secret, session_secret))

    def open_session(self, kind: str) -> str:
        """Another session of an official (or, for `portal_<kind>`, of that company's staff
        member), as a sign-in opens it."""
        if self.engine is None:
            self.engine = make_engine(_settings(self.infra), DIRECTORY, pool_size=2)
        sessions = Sessions(self.engine)
        with session_scope(self.engine) as session:
            secret = sessions.open(session, self.ids[kind], "127.0.0.1")
        found = sessions.lookup(secret)
        assert found is not None
        self.session_ids[secret] = found.session_id
        self.secrets.append(secret)
        return secret


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
        world.ids["person"] = staff_member(world.infra, {"id": world.ids["applicant_a"]}, "Ada")[
            "id"
        ]
        for side in ("EU", "CN"):
            for role in ("officer", "supervisor"):
                kind = f"{side.lower()}_{role}"
                official = enrol_official(directory, f"{side} {role}", side, role)
                world.people[kind] = official
                world.credentials[kind] = official["token"]
                world.ids[kind] = official["id"]
        world.credentials["operator"] = directory.create_operator("security tests")
        gone, key = directory.create_company("Gone GmbH", "DE" + uuid.uuid4().hex[:12].upper())
        directory.revoke(gone.id)
        world.credentials["revoked_key"] = key
        former = enrol_official(directory, "Former EU supervisor", "EU", "supervisor")
        world.ids["revoked"] = former["id"]
        world.credentials["revoked_official"] = former["token"]
        # Links for the invitation and reset pages (their forms are refused, the links stay).
        engine = directory.engine
        links = Invitations(engine, Passwords(), Sessions(engine))
        invited = f"invited.{uuid.uuid4().hex[:8]}@example.eu"
        world.ids["invitation_token"] = links.invite_official(invited, "New", "EU", "officer").token
        reset = links.request_reset(world.people["eu_officer"]["email"])
        assert reset is not None
        world.ids["reset_token"] = reset.token
        # The portal's: a staff member of each company (they sign in there), and links.
        for kind in STAFF:
            staff = enrol_staff(directory, world.ids[kind], f"Staff {kind[-1].upper()}")
            world.people[f"portal_{kind}"] = staff
            world.ids[f"portal_{kind}"] = staff["id"]
        staff_invited = f"staff.{uuid.uuid4().hex[:8]}@example.com"
        world.ids["staff_invitation_token"] = links.invite_staff(
            world.ids["applicant_a"], staff_invited, "New", "member"
        ).token
        staff_reset = links.request_reset(world.people["portal_applicant_a"]["email"])
        assert staff_reset is not None
        world.ids["staff_reset_token"] = staff_reset.token
    finally:
        directory.engine.dispose()
    for kind in (*OFFICIALS, "revoked", *(f"portal_{k}" for k in STAFF)):
        world.sessions[kind] = world.open_session(kind)
    # Revoking the former supervisor's credentials ends their token and session alike.
    directory = open_directory(_settings(world.infra))
    try:
        directory.revoke(world.ids["revoked"])
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


def propose_decline(world: World, case_id: str) -> str:
    """The EU officer proposes to decline the case (four eyes); the proposal's id."""
    view = act(world, "eu_officer", case_id, "decline", reason="out_of_scope")
    (proposal,) = view["proposals"]
    return str(proposal["id"])


def decline(world: World, case_id: str) -> None:
    """The case declined as the protocol has it: proposed, then countersigned (four eyes)."""
    proposal_id = propose_decline(world, case_id)
    with world.client("review", "eu_supervisor") as c:
        version = c.get(f"/v1/cases/{case_id}").json()["version"]
        r = c.post(
            f"/v1/cases/{case_id}/proposals/{proposal_id}/countersign",
            headers={"If-Match": str(version)},
        )
    assert r.status_code == 200, r.text


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
    names = ["main", "asked", "withdraw", "cn", "licence", "licence_revoke", "proposal"]
    # screening: admit (API and console) and the proposal routes' successful callers.
    pools = {"screening": 9, "queued": 2, "cn_review": 2}
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
    world.ids["proposal"] = propose_decline(world, world.ids["case_proposal"])
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
    # The portal's webhooks and e-mail pages ask notify (REE_NOTIFY_URL).
    services["intake"].env["REE_NOTIFY_URL"] = services["notify"].url
    try:
        for service in services.values():
            service.start()
        with running_receiver() as receiver:
            built = World(own, services, receiver, receiver.mailbox())
            try:
                _build(built)
                yield built
            finally:
                if built.engine is not None:
                    built.engine.dispose()
    finally:
        for service in services.values():
            service.stop()
        own.drop_schemas()
