"""A company's admin manages its API keys and colleagues in the portal (issues 20 and 21),
over real HTTP against intake as a real process: a new key works on the API at once, a
revoked one is refused at once by intake and notify; a member is refused; another company's
key is not found; the last admin stays admin; every form needs its CSRF token."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from shared.accounts import audit
from shared.accounts.models import Person
from shared.db import utcnow
from shared.directory import Credential, Directory
from tests.integration.accounts.test_people_cli import Mailbox
from tests.integration.conftest import new_company
from tests.people import enrol_staff, form_nonce, portal
from tests.portal_fixtures import company_fixture, directory_fixture, staff_fixture  # noqa: F401
from tests.support import Infra, ServiceProcess, free_port, running

SECRET = re.compile(r'value="(ree_ak_[A-Za-z0-9_-]+)"')
LINK = re.compile(r'value="(http[^"]+/invitation\?token=[^"]+)"')


@pytest.fixture(scope="module")
def notify(infra: Infra) -> Iterator[ServiceProcess]:
    yield from running("notify", infra)


company = company_fixture("Kappa Permanent Magnets AG")
admin = staff_fixture("Ada Admin")


def keys_named(directory: Directory, company_id: str, name: str) -> list[Credential]:
    with directory.engine.connect() as conn:
        table = Credential.__table__  # type: ignore[attr-defined]
        rows = conn.execute(
            select(table).where(table.c.subject_id == company_id, table.c.name == name)
        ).all()
    return [Credential(**r._mapping) for r in rows]


def csrf_of_form(page: httpx.Response, action: str) -> str:
    """The CSRF field of the page's form posting to `action` (as a browser posts it)."""
    form = re.search(
        rf'<form method="post" action="{re.escape(action)}"[^>]*>\s*<input type="hidden" '
        r'name="csrf" value="([^"]*)"',
        page.text,
    )
    assert form is not None and form.group(1), f"no form for {action} with its CSRF token"
    return form.group(1)


def create_key(browser: httpx.Client, name: str) -> httpx.Response:
    csrf = csrf_of_form(browser.get("/keys"), "/keys")
    return browser.post("/keys", data={"csrf": csrf, "name": name})


def test_a_new_key_works_at_once_and_a_revoked_one_is_refused_by_intake_and_notify(
    intake: ServiceProcess,
    notify: ServiceProcess,
    directory: Directory,
    company: dict[str, Any],
    admin: dict[str, Any],
) -> None:
    since = utcnow()
    with portal(intake.url, admin) as browser:
        home = browser.get("/")
        assert 'href="/keys"' in home.text and 'href="/colleagues"' in home.text
        made = create_key(browser, "Broker sync")
        assert made.status_code == 201, made.text[:500]
        secret = SECRET.search(made.text)
        assert secret is not None and "not shown again" in made.text
        key = secret.group(1)
        assert made.headers["cache-control"] == "no-store"
        calls = [(intake, "/v1/applications"), (notify, "/v1/webhook-endpoints")]
        for service, path in calls:
            with service.client(key) as api:
                assert api.get(path).status_code == 200, service.name
        listed = browser.get("/keys")
        assert "Broker sync" in listed.text and key not in listed.text  # shown once only
        (stored,) = keys_named(directory, company["id"], "Broker sync")
        confirm = browser.get(f"/keys/{stored.id}/revoke")
        assert confirm.status_code == 200 and "Broker sync" in confirm.text
        csrf = csrf_of_form(confirm, f"/keys/{stored.id}/revoke")
        gone = browser.post(f"/keys/{stored.id}/revoke", data={"csrf": csrf})
        assert gone.status_code == 303 and gone.headers["location"] == "/keys?done=revoked"
        for service, path in calls:
            with service.client(key) as api:
                answer = api.get(path)
                assert answer.status_code == 401, (service.name, answer.text)
        again = browser.post(f"/keys/{stored.id}/revoke", data={"csrf": csrf})
        assert again.status_code == 409 and "revoked already" in again.text
        assert "Broker sync" not in browser.get("/keys").text
    lines = [e for e in audit.events(directory.engine, since) if e.actor == admin["id"]]
    assert {"key_created", "key_revoked"} <= {e.action for e in lines}
    assert any(f"key {stored.id} name 'Broker sync'" in (e.detail or "") for e in lines)


def test_a_bad_or_taken_name_is_told_next_to_the_field_and_nothing_is_stored(
    intake: ServiceProcess, directory: Directory, company: dict[str, Any], admin: dict[str, Any]
) -> None:
    with portal(intake.url, admin) as browser:
        assert create_key(browser, "Warehouse").status_code == 201
        taken = create_key(browser, "warehouse")
        assert taken.status_code == 409
        assert 'id="name-error"' in taken.text and "another key in use has this name" in taken.text
        assert 'aria-invalid="true"' in taken.text
        chinese = browser.post(
            "/keys?lang=zh-Hans", data={"csrf": form_nonce(taken), "name": "WAREHOUSE"}
        )
        assert chinese.status_code == 409 and "另一个使用中的密钥已使用此名称" in chinese.text
        browser.get("/keys?lang=en")
        empty = create_key(browser, "   ")
        assert empty.status_code == 422 and 'id="name-error"' in empty.text
        long = create_key(browser, "x" * 101)
        assert long.status_code == 422
        forged = browser.post("/keys", data={"csrf": "forged", "name": "Sneaky"})
        assert forged.status_code == 403
    assert len(keys_named(directory, company["id"], "Warehouse")) == 1
    assert keys_named(directory, company["id"], "warehouse") == []
    assert keys_named(directory, company["id"], "Sneaky") == []


def test_a_member_sees_neither_link_nor_page(
    intake: ServiceProcess, directory: Directory, company: dict[str, Any]
) -> None:
    member = enrol_staff(directory, company["id"], "Max Member", role="member")
    with portal(intake.url, member) as browser:
        home = browser.get("/")
        assert home.status_code == 200
        assert 'href="/keys"' not in home.text and 'href="/colleagues"' not in home.text
        for path in ("/keys", "/colleagues"):
            page = browser.get(path)
            assert page.status_code == 403 and "text/html" in page.headers["content-type"]
        refused = browser.post("/keys", data={"csrf": form_nonce(home), "name": "Mine"})
        assert refused.status_code == 403
        invite = {"csrf": form_nonce(home), "email": "x.member@example.com", "role": "admin"}
        assert browser.post("/colleagues", data=invite).status_code == 403
    assert keys_named(directory, company["id"], "Mine") == []


def test_another_companys_key_and_colleague_are_not_found(
    intake: ServiceProcess, infra: Infra, directory: Directory, admin: dict[str, Any]
) -> None:
    other = new_company(infra, "Lambda Alloys SA")
    their_admin = enrol_staff(directory, other["id"], "Bea Beta")
    with portal(intake.url, their_admin) as theirs:
        assert create_key(theirs, "Theirs").status_code == 201
    (their_key,) = keys_named(directory, other["id"], "Theirs")
    with portal(intake.url, admin) as browser:
        assert browser.get(f"/keys/{their_key.id}/revoke").status_code == 404
        csrf = form_nonce(browser.get("/keys"))
        answer = browser.post(f"/keys/{their_key.id}/revoke", data={"csrf": csrf})
        assert answer.status_code == 404 and "Theirs" not in answer.text
        for path in (f"/colleagues/{their_admin['id']}/disable", "/colleagues/nobody/enable"):
            assert browser.get(path).status_code == 404
            assert browser.post(path, data={"csrf": csrf}).status_code == 404
        role = browser.post(
            f"/colleagues/{their_admin['id']}/role", data={"csrf": csrf, "role": "member"}
        )
        assert role.status_code == 404
    (still,) = keys_named(directory, other["id"], "Theirs")
    assert still.revoked_at is None
    with directory.engine.connect() as conn:  # their admin is still an enabled admin
        table = Person.__table__  # type: ignore[attr-defined]
        row = conn.execute(select(table).where(table.c.id == their_admin["id"])).one()
    assert row.role == "admin" and row.disabled_at is None


def test_an_admin_invites_promotes_disables_and_enables_a_colleague(
    intake: ServiceProcess, infra: Infra, directory: Directory
) -> None:
    own = new_company(infra, "Mu Magnetics GmbH")
    admin = enrol_staff(directory, own["id"], "Ida Admin")
    colleague = enrol_staff(directory, own["id"], "Carl Colleague", role="member", by=admin["id"])
    with portal(intake.url, admin) as browser:
        page = browser.get("/colleagues")
        assert page.status_code == 200 and "Carl Colleague" in page.text
        csrf = csrf_of_form(page, "/colleagues")
        assert csrf_of_form(page, f"/colleagues/{colleague['id']}/role") == csrf
        bad = browser.post("/colleagues", data={"csrf": csrf, "email": "nope", "role": "member"})
        assert bad.status_code == 422 and 'id="invite-email-error"' in bad.text
        invited = browser.post(
            "/colleagues",
            data={"csrf": csrf, "email": "dora.new@example.com", "name": "Dora", "role": "member"},
        )
        assert invited.status_code == 201, invited.text[:500]
        link = LINK.search(invited.text)
        assert link is not None and "/invitation?token=ree_in_" in link.group(1)
        assert "Dora" in browser.get("/colleagues").text
        taken = browser.post(
            "/colleagues", data={"csrf": csrf, "email": colleague["email"], "role": "member"}
        )
        assert taken.status_code == 409 and "someone has this e-mail address already" in taken.text
        # Carl signed in; made an admin, his session ends (he signs in anew with the role).
        with portal(intake.url, colleague, fresh=True) as carl:
            assert carl.get("/keys").status_code == 403
            promoted = browser.post(
                f"/colleagues/{colleague['id']}/role", data={"csrf": csrf, "role": "admin"}
            )
            assert promoted.status_code == 303
            assert carl.get("/").headers["location"] == "/sign-in"
        with portal(intake.url, colleague, fresh=True) as carl:
            assert carl.get("/keys").status_code == 200
            confirm = browser.get(f"/colleagues/{colleague['id']}/disable")
            assert confirm.status_code == 200 and "Carl Colleague" in confirm.text
            assert csrf_of_form(confirm, f"/colleagues/{colleague['id']}/disable") == csrf
            done = browser.post(f"/colleagues/{colleague['id']}/disable", data={"csrf": csrf})
            assert (
                done.status_code == 303 and done.headers["location"] == "/colleagues?done=disabled"
            )
            assert carl.get("/").headers["location"] == "/sign-in"  # ended at once
        assert "Disabled" in browser.get("/colleagues").text
        again = browser.post(f"/colleagues/{colleague['id']}/enable", data={"csrf": csrf})
        assert again.status_code == 303
        with portal(intake.url, colleague, fresh=True) as carl:
            assert carl.get("/").status_code == 200


def test_the_last_admin_cannot_demote_or_disable_themselves(
    intake: ServiceProcess, infra: Infra, directory: Directory
) -> None:
    own = new_company(infra, "Nu Rare Metals BV")
    admin = enrol_staff(directory, own["id"], "Lone Admin")
    with portal(intake.url, admin, fresh=True) as browser:
        csrf = form_nonce(browser.get("/colleagues"))
        demote = browser.post(
            f"/colleagues/{admin['id']}/role", data={"csrf": csrf, "role": "member"}
        )
        assert demote.status_code == 409 and "last admin" in demote.text
        assert f'id="role-{admin["id"]}-error"' in demote.text
        disable = browser.post(f"/colleagues/{admin['id']}/disable", data={"csrf": csrf})
        assert disable.status_code == 409 and "last admin" in disable.text
        assert browser.get("/keys").status_code == 200  # still signed in, still admin
        forged = browser.post(f"/colleagues/{admin['id']}/disable", data={"csrf": "x"})
        assert forged.status_code == 403


@pytest.fixture(scope="module")
def mailed(infra: Infra) -> Iterator[tuple[ServiceProcess, Mailbox, Controller]]:
    """Intake whose invitations go through a real SMTP server (aiosmtpd)."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()  # returns once the server answers
    env = infra.env(REE_SMTP_URL=f"smtp://127.0.0.1:{port}", REE_SMTP_FROM="portal@ree.example")
    service = ServiceProcess("intake", env).start()
    yield service, mailbox, controller
    service.stop()
    if controller.loop.is_running():
        controller.stop()


def test_an_invitation_is_e_mailed_where_smtp_is_set_and_shown_if_sending_fails(
    mailed: tuple[ServiceProcess, Mailbox, Controller], infra: Infra, directory: Directory
) -> None:
    intake, mailbox, controller = mailed
    own = new_company(infra, "Xi Ceramics SE")
    admin = enrol_staff(directory, own["id"], "Mira Mail")
    with portal(intake.url, admin, fresh=True) as browser:
        csrf = csrf_of_form(browser.get("/colleagues"), "/colleagues")
        email = f"nina.{uuid.uuid4().hex[:8]}@example.com"
        sent = browser.post("/colleagues", data={"csrf": csrf, "email": email, "role": "member"})
        assert sent.status_code == 201 and "is e-mailed to them" in sent.text
        assert LINK.search(sent.text) is None  # the link went to them, not on the page
        envelope = mailbox.received[-1]
        assert envelope.rcpt_tos == [email] and envelope.mail_from == "portal@ree.example"
        body = message_from_bytes(envelope.original_content or b"").get_payload(decode=True)
        assert isinstance(body, bytes) and "/invitation?token=ree_in_" in body.decode()
        controller.stop()  # the mail server goes away: the admin is given the link instead
        other = f"otto.{uuid.uuid4().hex[:8]}@example.com"
        shown = browser.post("/colleagues", data={"csrf": csrf, "email": other, "role": "member"})
        assert shown.status_code == 201 and "could not be sent" in shown.text
        assert LINK.search(shown.text) is not None
