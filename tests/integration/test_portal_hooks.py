"""The portal's webhooks and e-mail pages (issue 21), with intake and notify as real processes.

Notify accepts a company staff member's session forwarded in `X-REE-Portal-Session`
(shared/forwarded.py): a live session only (not after sign-out, not once the person is
disabled, never an official's), never from a cookie; a member reads, an admin changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.accounts.models import Person, PersonKind, StaffRole
from shared.accounts.people import People
from shared.accounts.sessions import COOKIE_NAME, Sessions
from shared.db import session_scope
from shared.directory import Directory, open_directory
from shared.forwarded import HEADER
from tests.integration.notify_support import (
    Receiver,
    new_company,
    notify_env,
    running_receiver,
)
from tests.people import enrol_official, settings_of
from tests.support import Infra, ServiceProcess

EVENTS = ["application.status_changed"]


@pytest.fixture(scope="module")
def directory(infra: Infra) -> Iterator[Directory]:
    opened = open_directory(settings_of(infra))
    yield opened
    opened.engine.dispose()


@pytest.fixture(scope="module")
def notify(infra: Infra) -> Iterator[ServiceProcess]:
    service = ServiceProcess("notify", notify_env(infra)).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture(scope="module")
def company(infra: Infra) -> dict[str, Any]:
    return new_company(infra, "Epsilon Rotors GmbH")


def staff(directory: Directory, company: dict[str, Any], role: StaffRole) -> dict[str, str]:
    """A staff member of the company, written as an accepted invitation leaves them."""
    person = Person(
        kind=PersonKind.staff.value,
        email=f"{role.value}.{uuid.uuid4().hex[:8]}@company.example",
        name=f"A {role.value}",
        company_id=company["id"],
        role=role.value,
        password_hash="not used: the session is opened directly",
    )
    with session_scope(directory.engine) as session:
        session.add(person)
    return {"id": person.id, "email": person.email}


def session_of(directory: Directory, person_id: str) -> str:
    """A session of the person, as sign-in opens it (the sign-in itself is accounts' concern)."""
    with session_scope(directory.engine) as session:
        return Sessions(directory.engine).open(session, person_id)


def forwarding(notify: ServiceProcess, secret: str) -> httpx.Client:
    return httpx.Client(base_url=notify.url, headers={HEADER: secret}, timeout=20)


def endpoint_body(receiver: Receiver) -> dict[str, Any]:
    return {"url": f"http://127.0.0.1:{receiver.port}/hooks", "event_types": EVENTS}


# --- notify accepts the forwarded session ------------------------------------------------------


def test_a_live_staff_session_is_its_companys_principal(
    notify: ServiceProcess, directory: Directory, company: dict[str, Any], receiver: Receiver
) -> None:
    admin = staff(directory, company, StaffRole.admin)
    with notify.client(company["api_key"]) as by_key:
        made = by_key.post("/v1/webhook-endpoints", json=endpoint_body(receiver))
        assert made.status_code == 201, made.text
    with forwarding(notify, session_of(directory, admin["id"])) as c:
        listed = c.get("/v1/webhook-endpoints")
        assert listed.status_code == 200, listed.text
        assert made.json()["id"] in [e["id"] for e in listed.json()["items"]]
        mine = c.get(f"/v1/people/{admin['id']}/notifications")
        assert mine.status_code == 200, mine.text
        assert mine.json()["email"] == admin["email"]


def test_the_forwarded_session_is_refused_after_sign_out_and_once_disabled(
    notify: ServiceProcess, directory: Directory, company: dict[str, Any]
) -> None:
    signed_out = staff(directory, company, StaffRole.admin)
    secret = session_of(directory, signed_out["id"])
    with forwarding(notify, secret) as c:
        assert c.get("/v1/webhook-endpoints").status_code == 200
        with session_scope(directory.engine) as session:
            assert Sessions(directory.engine).end(session, secret) == signed_out["id"]
        assert c.get("/v1/webhook-endpoints").status_code == 401

    disabled = staff(directory, company, StaffRole.member)
    with forwarding(notify, session_of(directory, disabled["id"])) as c:
        assert c.get("/v1/webhook-endpoints").status_code == 200
        People(directory.engine, Sessions(directory.engine)).disable(
            disabled["id"], by="operator:tests"
        )
        refused = c.get("/v1/webhook-endpoints")
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")


def test_an_officials_session_and_made_up_secrets_are_refused(
    notify: ServiceProcess, directory: Directory
) -> None:
    official = enrol_official(directory, "EU officer", "EU", "officer")
    for secret in (session_of(directory, official["id"]), "ree_ss_made-up", official["token"]):
        with forwarding(notify, secret) as c:
            assert c.get("/v1/webhook-endpoints").status_code == 401, secret


def test_the_session_is_never_taken_from_a_cookie(
    notify: ServiceProcess, directory: Directory, company: dict[str, Any]
) -> None:
    """Notify shares the portal's host: a browser would send the portal's cookie to it."""
    admin = staff(directory, company, StaffRole.admin)
    secret = session_of(directory, admin["id"])
    with httpx.Client(base_url=notify.url, cookies={COOKIE_NAME: secret}, timeout=20) as c:
        assert c.get("/v1/webhook-endpoints").status_code == 401
        assert c.get(f"/v1/people/{admin['id']}/notifications").status_code == 401


def test_a_member_reads_but_only_an_admin_changes_endpoints(
    notify: ServiceProcess, directory: Directory, company: dict[str, Any], receiver: Receiver
) -> None:
    admin = staff(directory, company, StaffRole.admin)
    member = staff(directory, company, StaffRole.member)
    with forwarding(notify, session_of(directory, admin["id"])) as c:
        made = c.post("/v1/webhook-endpoints", json=endpoint_body(receiver))
        assert made.status_code == 201, made.text
        endpoint = made.json()["id"]
        test = c.post(f"/v1/webhook-endpoints/{endpoint}/test")
        assert test.status_code == 202, test.text
        delivery = test.json()["id"]
    with forwarding(notify, session_of(directory, member["id"])) as c:
        assert c.get(f"/v1/webhook-endpoints/{endpoint}").status_code == 200
        assert c.get(f"/v1/webhook-endpoints/{endpoint}/deliveries").status_code == 200
        assert c.get(f"/v1/deliveries/{delivery}").status_code == 200
        changes = [
            c.post("/v1/webhook-endpoints", json=endpoint_body(receiver)),
            c.post(f"/v1/webhook-endpoints/{endpoint}/rotate-secret"),
            c.post(f"/v1/webhook-endpoints/{endpoint}/enable"),
            c.post(f"/v1/webhook-endpoints/{endpoint}/test"),
            c.post(
                f"/v1/webhook-endpoints/{endpoint}/recover", json={"since": "2026-01-01T00:00:00Z"}
            ),
            c.post(f"/v1/deliveries/{delivery}/redeliver"),
            c.delete(f"/v1/webhook-endpoints/{endpoint}"),
        ]
        assert [r.status_code for r in changes] == [403] * len(changes)
    with notify.client(company["api_key"]) as by_key:
        assert by_key.get(f"/v1/webhook-endpoints/{endpoint}").status_code == 200


def test_a_person_sees_and_chooses_only_their_own_email(
    notify: ServiceProcess, directory: Directory, company: dict[str, Any]
) -> None:
    admin = staff(directory, company, StaffRole.admin)
    colleague = staff(directory, company, StaffRole.member)
    with forwarding(notify, session_of(directory, admin["id"])) as c:
        own = c.put(f"/v1/people/{admin['id']}/notifications", json={"event_types": EVENTS})
        assert own.status_code == 200, own.text
        assert own.json()["event_types"] == EVENTS
        path = f"/v1/people/{colleague['id']}/notifications"
        assert c.get(path).status_code == 403
        assert c.put(path, json={"event_types": []}).status_code == 403
        assert c.get(path + "/deliveries").status_code == 403


def test_event_types_list_what_may_be_chosen_and_one_credential_is_sent(
    notify: ServiceProcess, directory: Directory, company: dict[str, Any]
) -> None:
    member = staff(directory, company, StaffRole.member)
    secret = session_of(directory, member["id"])
    with forwarding(notify, secret) as c:
        listed = c.get("/v1/event-types")
        assert listed.status_code == 200, listed.text
        types = {item["type"]: item["emailed_by_default"] for item in listed.json()["items"]}
        assert types["licence.issued"] is True
        assert types["application.received"] is False
        both = c.get(
            "/v1/webhook-endpoints", headers={"Authorization": f"Bearer {company['api_key']}"}
        )
        assert both.status_code == 400
