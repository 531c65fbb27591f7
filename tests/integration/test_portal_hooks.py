"""The portal's webhooks and e-mail pages (issue 21), with intake and notify as real processes.

Notify accepts a company staff member's session forwarded in `X-REE-Portal-Session`
(shared/forwarded.py): a live session only (not after sign-out, not once the person is
disabled, never an official's), never from a cookie; a member reads, an admin changes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from shared.accounts.models import Person, PersonKind, StaffRole
from shared.accounts.people import People
from shared.accounts.sessions import COOKIE_NAME, Sessions
from shared.accounts.sessions import PORTAL_COOKIE_NAME as PORTAL_COOKIE
from shared.db import session_scope
from shared.directory import Directory
from shared.forwarded import HEADER
from tests.integration.notify_support import (
    Receiver,
    new_company,
    notify_env,
    running_receiver,
    wait_for,
    wait_for_log,
)
from tests.people import enrol_official, enrol_staff, form_nonce, portal
from tests.portal_fixtures import company_fixture, directory_fixture, staff_fixture  # noqa: F401
from tests.support import Infra, ServiceProcess, free_port, started

EVENTS = ["application.status_changed"]


@pytest.fixture(scope="module")
def notify(infra: Infra) -> Iterator[ServiceProcess]:
    with started("notify", notify_env(infra)) as service:
        yield service


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


# Made in this process, as notify's tests make theirs (the operator's command is slower).
company = company_fixture("Epsilon Rotors GmbH", create=new_company)


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
    for cookie in (PORTAL_COOKIE, COOKIE_NAME):  # the portal's cookie and the console's
        with httpx.Client(base_url=notify.url, cookies={cookie: secret}, timeout=20) as c:
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


# --- the portal's pages ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def portal_intake(infra: Infra, notify: ServiceProcess) -> Iterator[ServiceProcess]:
    """Intake whose portal reaches the notify process above (REE_NOTIFY_URL)."""
    with started("intake", infra.env(REE_NOTIFY_URL=notify.url)) as service:
        yield service


admin = staff_fixture("Ada Admin", role="admin")
member = staff_fixture("Max Member", role="member")


def csrf_of(page: httpx.Response) -> str:
    """The session's CSRF token, which every form of the page carries."""
    tokens = set(re.findall(r'name="csrf" value="([^"]*)"', page.text))
    assert tokens == {form_nonce(page)} and "" not in tokens, tokens
    return form_nonce(page)


@contextmanager
def opened(
    intake: ServiceProcess,
    person: dict[str, Any],
    path: str,
    fresh: bool = False,
    **params: str,
) -> Iterator[tuple[httpx.Client, httpx.Response]]:
    """A browser of `person` signed in to `intake`'s portal (in a new session if `fresh`),
    and the page at `path` it opens first (200)."""
    with portal(intake.url, person, fresh=fresh) as browser:
        page = browser.get(path, params=params)
        assert page.status_code == 200, (path, page.text[:500])
        yield browser, page


def add_in_portal(browser: httpx.Client, url: str, events: list[str] = EVENTS) -> httpx.Response:
    token = csrf_of(browser.get("/webhooks"))
    return browser.post(
        "/webhooks", data={"csrf": token, "url": url, "event_types": events, "description": "ERP"}
    )


def secret_on(page: httpx.Response) -> str:
    """The signing secret a page shows (once)."""
    found = re.search(r'value="(whsec_[^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def endpoint_of(notify: ServiceProcess, company: dict[str, Any], url: str) -> dict[str, Any]:
    with notify.client(company["api_key"]) as api:
        listed = api.get("/v1/webhook-endpoints", params={"limit": 200})
        assert listed.status_code == 200, listed.text
    [found] = [e for e in listed.json()["items"] if e["url"] == url]
    return found


def test_an_endpoint_added_in_the_portal_is_in_notifys_api_its_secret_shown_once(
    portal_intake: ServiceProcess,
    notify: ServiceProcess,
    company: dict[str, Any],
    admin: dict[str, Any],
    receiver: Receiver,
) -> None:
    box = receiver.mailbox()
    with opened(portal_intake, admin, "/webhooks") as (browser, page):
        assert 'href="/webhooks"' in page.text and 'href="/me/emails"' in page.text
        added = add_in_portal(browser, box.url)
        assert added.status_code == 201, added.text[:800]
        secret = secret_on(added)
        endpoint = endpoint_of(notify, company, box.url)
        assert endpoint["event_types"] == EVENTS and endpoint["description"] == "ERP"
        again = browser.get("/webhooks")
        assert box.url in again.text and secret not in again.text

        detail = browser.get(f"/webhooks/{endpoint['id']}")
        assert detail.status_code == 200
        rotated = browser.post(
            f"/webhooks/{endpoint['id']}/rotate-secret", data={"csrf": csrf_of(detail)}
        )
        assert rotated.status_code == 200, rotated.text[:500]
        assert secret_on(rotated) != secret
        assert secret_on(rotated) not in browser.get(f"/webhooks/{endpoint['id']}").text


def test_notifys_refusal_is_shown_next_to_the_field_and_nothing_is_stored(
    portal_intake: ServiceProcess,
    notify: ServiceProcess,
    company: dict[str, Any],
    admin: dict[str, Any],
) -> None:
    inside = "https://10.1.2.3/hooks"  # a private address: notify's SSRF rule refuses it
    with opened(portal_intake, admin, "/webhooks") as (browser, _):
        refused = add_in_portal(browser, inside)
        assert refused.status_code == 422, refused.text[:500]
        assert 'id="url-error"' in refused.text and 'aria-invalid="true"' in refused.text
        assert inside in refused.text  # the form keeps what was typed
        none_chosen = add_in_portal(browser, "https://erp.example.com/hooks", events=[])
        assert none_chosen.status_code == 422
        assert 'id="event_types-error"' in none_chosen.text
    with notify.client(company["api_key"]) as api:
        urls = [e["url"] for e in api.get("/v1/webhook-endpoints").json()["items"]]
    assert inside not in urls and "https://erp.example.com/hooks" not in urls


def test_a_member_sees_the_endpoints_but_cannot_change_them(
    portal_intake: ServiceProcess,
    notify: ServiceProcess,
    company: dict[str, Any],
    member: dict[str, Any],
    receiver: Receiver,
) -> None:
    box = receiver.mailbox()
    with notify.client(company["api_key"]) as api:
        endpoint = api.post(
            "/v1/webhook-endpoints", json={"url": box.url, "event_types": EVENTS}
        ).json()
    with opened(portal_intake, member, "/webhooks") as (browser, page):
        assert box.url in page.text
        assert 'method="post" action="/webhooks"' not in page.text  # no form to add one
        token = csrf_of(page)
        added = browser.post(
            "/webhooks", data={"csrf": token, "url": box.url, "event_types": EVENTS}
        )
        assert added.status_code == 403, added.text[:500]
        for action in ("rotate-secret", "test", "enable", "delete"):
            answer = browser.post(f"/webhooks/{endpoint['id']}/{action}", data={"csrf": token})
            assert answer.status_code == 403, (action, answer.text[:300])
    assert endpoint_of(notify, company, box.url)["id"] == endpoint["id"]


def test_a_test_message_and_its_redelivery_from_the_page_are_new_attempts(
    portal_intake: ServiceProcess,
    notify: ServiceProcess,
    company: dict[str, Any],
    admin: dict[str, Any],
    receiver: Receiver,
) -> None:
    box = receiver.mailbox()
    with opened(portal_intake, admin, "/webhooks") as (browser, _):
        added = add_in_portal(browser, box.url)
        assert added.status_code == 201
        box.secrets.append(secret_on(added))  # the receiver verifies with the secret shown
        endpoint = endpoint_of(notify, company, box.url)
        page = f"/webhooks/{endpoint['id']}"
        sent = browser.post(f"{page}/test", data={"csrf": csrf_of(browser.get(page))})
        assert sent.status_code == 303 and sent.headers["location"] == f"{page}?done=test"
        with notify.client(company["api_key"]) as api:
            [delivery] = wait_for_log(api, endpoint["id"], 1)
            log = browser.get(page)
            assert delivery["webhook_id"] in log.text and "HTTP 200" in log.text
            again = browser.post(
                f"{page}/deliveries/{delivery['id']}/redeliver", data={"csrf": csrf_of(log)}
            )
            assert again.status_code == 303, again.text[:300]
            assert again.headers["location"] == f"{page}?done=redelivered"
            wait_for(
                lambda: (
                    api.get(f"/v1/deliveries/{delivery['id']}").json()["attempt_count"] >= 2 or None
                ),
                what="the redelivery's attempt",
            )
        assert browser.get(page).text.count("HTTP 200") >= 2
    assert len(box.successes()) >= 2


def test_a_person_chooses_their_own_emails_in_the_portal(
    portal_intake: ServiceProcess,
    notify: ServiceProcess,
    company: dict[str, Any],
    member: dict[str, Any],
) -> None:
    with opened(portal_intake, member, "/me/emails") as (browser, page):
        assert 'value="licence.issued" checked' in page.text  # a default until chosen
        saved = browser.post(
            "/me/emails", data={"csrf": csrf_of(page), "event_types": ["application.received"]}
        )
        assert saved.status_code == 303 and saved.headers["location"] == "/me/emails?done=saved"
        again = browser.get("/me/emails")
        assert 'value="application.received" checked' in again.text
        assert 'value="licence.issued" checked' not in again.text
    with notify.client(company["api_key"]) as api:
        choice = api.get(f"/v1/people/{member['id']}/notifications").json()
    assert choice["event_types"] == ["application.received"]


def test_the_pages_say_webhooks_are_unavailable_while_notify_does_not_answer(
    infra: Infra, company: dict[str, Any], admin: dict[str, Any]
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    # Five requests of a new session, each counted once: the page saying notify is away
    # takes the member its route signed in, and counts no second request (that would be 9).
    env = infra.env(REE_NOTIFY_URL=nowhere, REE_RATE_LIMIT_PER_MINUTE="7")
    with (
        started("intake", env) as intake,
        opened(intake, admin, "/", fresh=True) as (browser, home),
    ):
        for path in ("/webhooks", "/webhooks/some-endpoint", "/me/emails"):
            page = browser.get(path)
            assert page.status_code == 503, (path, page.text[:300])
            assert "Webhooks are unavailable right now" in page.text
        token = csrf_of(home)
        posted = browser.post(
            "/webhooks",
            data={"csrf": token, "url": "https://a.example/h", "event_types": EVENTS},
        )
        assert posted.status_code == 503


PAGES = [
    ("GET", "/webhooks"),
    ("POST", "/webhooks"),
    ("GET", "/webhooks/{e}"),
    ("POST", "/webhooks/{e}/rotate-secret"),
    ("POST", "/webhooks/{e}/test"),
    ("POST", "/webhooks/{e}/enable"),
    ("POST", "/webhooks/{e}/recover"),
    ("POST", "/webhooks/{e}/delete"),
    ("POST", "/webhooks/{e}/deliveries/{d}/redeliver"),
    ("GET", "/me/emails"),
    ("POST", "/me/emails"),
]


def test_signed_out_every_page_sends_to_sign_in_and_another_companys_endpoint_is_not_found(
    portal_intake: ServiceProcess,
    notify: ServiceProcess,
    directory: Directory,
    company: dict[str, Any],
    receiver: Receiver,
    infra: Infra,
) -> None:
    with notify.client(company["api_key"]) as api:
        endpoint = api.post("/v1/webhook-endpoints", json=endpoint_body(receiver)).json()
        delivery = api.post(f"/v1/webhook-endpoints/{endpoint['id']}/test").json()
    ids = {"e": endpoint["id"], "d": delivery["id"]}
    with httpx.Client(base_url=portal_intake.url, timeout=20) as anonymous:
        for method, path in PAGES:
            answer = anonymous.request(method, path.format(**ids), data={"csrf": "x"})
            assert answer.status_code == 303, (method, path, answer.status_code)
            assert answer.headers["location"] == "/sign-in"
    other = new_company(infra, "Eta Other GmbH")
    stranger = enrol_staff(directory, other["id"], "Olga Other", role="admin")
    with opened(portal_intake, stranger, "/webhooks") as (browser, listed):
        assert endpoint["url"] not in listed.text
        token = csrf_of(listed)
        for method, path in PAGES[2:9]:
            answer = browser.request(method, path.format(**ids), data={"csrf": token})
            assert answer.status_code == 404, (method, path, answer.status_code)
    with notify.client(company["api_key"]) as api:
        assert api.get(f"/v1/webhook-endpoints/{endpoint['id']}").status_code == 200


def test_the_webhooks_and_email_pages_speak_chinese(
    portal_intake: ServiceProcess, admin: dict[str, Any]
) -> None:
    with opened(portal_intake, admin, "/webhooks", lang="zh-Hans") as (browser, hooks):
        assert "新端点" in hooks.text and "New endpoint" not in hooks.text
        emails = browser.get("/me/emails")  # the language is kept
        assert "保存我的选择" in emails.text and "Save my choice" not in emails.text
        browser.get("/", params={"lang": "en"})


def test_recovering_asks_for_a_time_and_sends_again_since_then(
    portal_intake: ServiceProcess,
    notify: ServiceProcess,
    company: dict[str, Any],
    admin: dict[str, Any],
    receiver: Receiver,
) -> None:
    with notify.client(company["api_key"]) as api:
        endpoint = api.post("/v1/webhook-endpoints", json=endpoint_body(receiver)).json()
    page = f"/webhooks/{endpoint['id']}"
    with opened(portal_intake, admin, page) as (browser, detail):
        token = csrf_of(detail)
        for typed in ("", "yesterday"):
            refused = browser.post(f"{page}/recover", data={"csrf": token, "since": typed})
            assert refused.status_code == 422, refused.text[:300]
            assert 'id="since-error"' in refused.text
        done = browser.post(f"{page}/recover", data={"csrf": token, "since": "2026-01-01T00:00"})
        assert done.status_code == 303, done.text[:300]
        assert done.headers["location"] == f"{page}?done=recovered"
