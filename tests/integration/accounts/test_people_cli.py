"""The operator's commands for people (`reechannel official invite`, `company invite`,
`person disable`, `people audit`), invitation e-mails through a real SMTP server, and
officials' tokens that expire, refused by every running service."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session
from sqlalchemy import update

from shared.accounts.invitations import Answer
from shared.accounts.totp import new_secret
from shared.db import utcnow
from shared.directory import Credential, Directory
from tests.integration.accounts.support import PASSWORD, kit, next_code, unique_email
from tests.integration.conftest import new_company
from tests.support import ROOT, Infra, ServiceProcess, free_port, operator, running


def reechannel(infra: Infra, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reechannel.cli", *args],
        env=infra.env(**env),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def as_json(infra: Infra, *args: str, **env: str) -> dict[str, Any]:
    done = reechannel(infra, *args, "--json", **env)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


class Mailbox:
    """An aiosmtpd handler keeping what it was sent."""

    def __init__(self) -> None:
        self.received: list[Envelope] = []

    async def handle_DATA(self, _server: Any, _session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 OK"


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()  # returns once the server answers
    yield mailbox, port
    controller.stop()


def test_official_create_gives_the_token_an_expiry_of_90_days_or_as_asked(infra: Infra) -> None:
    before = utcnow()
    made = operator(
        infra, "official", "create", "--name", "Eva", "--side", "EU", "--role", "officer"
    )
    expires = datetime.fromisoformat(made["expires_at"])
    assert before + timedelta(days=90) <= expires <= utcnow() + timedelta(days=90)
    short = as_json(
        infra, "official", "create", "--name", "Bot", "--side", "CN", "--role", "officer",
        "--expires-in", "12h",
    )  # fmt: skip
    assert datetime.fromisoformat(short["expires_at"]) <= utcnow() + timedelta(hours=12)
    for bad in ("0", "soon", "-5d", "9999d"):
        refused = reechannel(
            infra, "official", "create", "--name", "X", "--side", "EU", "--role", "officer",
            "--expires-in", bad,
        )  # fmt: skip
        assert refused.returncode == 2, bad


@pytest.fixture(scope="module")
def notify(infra: Infra) -> Iterator[ServiceProcess]:
    yield from running("notify", infra)


def test_an_expired_token_is_refused_by_every_service(
    infra: Infra,
    directory: Directory,
    intake: ServiceProcess,
    review: ServiceProcess,
    notify: ServiceProcess,
) -> None:
    made = operator(
        infra, "official", "create", "--name", "Bot", "--side", "EU", "--role", "officer"
    )
    token = made["token"]
    calls = [(intake, "/v1/applications"), (review, "/v1/cases"), (notify, "/v1/webhook-endpoints")]
    for service, path in calls:
        with service.client(token) as c:
            assert c.get(path).status_code != 401, service.name
    table = Credential.__table__  # type: ignore[attr-defined]
    with directory.engine.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.subject_id == made["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    for service, path in calls:
        with service.client(token) as c:
            answer = c.get(path)
            assert answer.status_code == 401, (service.name, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
    assert not directory.can_sign_in(made["id"])


def test_an_official_invited_at_the_command_line_accepts_the_printed_link(
    infra: Infra, directory: Directory
) -> None:
    email = unique_email()
    shown = reechannel(
        infra, "official", "invite", "--email", email, "--side", "EU", "--role", "officer"
    )
    assert shown.returncode == 0, shown.stderr
    link = shown.stdout.split()[-1]
    assert link.startswith("http://127.0.0.1:8002/invitation?token=ree_in_")
    accounts = kit(directory, infra.redis(), infra).accounts
    secret = new_secret()
    token = link.partition("token=")[2]
    person = accounts.invitations.accept(token, Answer(PASSWORD, secret, next_code(secret)))
    assert person.email == email and person.side == "EU"
    again = reechannel(
        infra, "official", "invite", "--email", email, "--side", "EU", "--role", "officer"
    )
    assert again.returncode == 2 and "e-mail address already" in again.stderr
    wrong = reechannel(
        infra, "official", "invite", "--email", unique_email(), "--side", "US", "--role", "officer"
    )
    assert wrong.returncode == 2 and "side must be EU or CN" in wrong.stderr


def test_an_invitation_link_leads_to_the_console_the_settings_name(infra: Infra) -> None:
    shown = reechannel(
        infra, "official", "invite", "--email", unique_email(), "--side", "CN", "--role",
        "officer", REE_CONSOLE_URL="https://console.ree.example",
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split()[-1].startswith("https://console.ree.example/invitation?token=")


def test_a_company_invitation_is_e_mailed_where_smtp_is_set_and_people_are_audited(
    infra: Infra, directory: Directory, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    company = new_company(infra, "Gamma Magnets GmbH")
    email = unique_email("ada")
    started = utcnow()
    sent = as_json(
        infra, "company", "invite", "--company", company["id"], "--email", email,
        REE_SMTP_URL=f"smtp://127.0.0.1:{port}", REE_SMTP_FROM="ops@ree.example",
        REE_PORTAL_URL="https://portal.ree.example",
    )  # fmt: skip
    assert sent["emailed"] is True and "link" not in sent and sent["role"] == "admin"
    envelope = mailbox.received[-1]
    assert envelope.rcpt_tos == [email] and envelope.mail_from == "ops@ree.example"
    body = message_from_bytes(envelope.original_content or b"").get_payload(decode=True)
    assert isinstance(body, bytes)
    link = next(
        w for w in body.decode().split() if w.startswith("https://portal.ree.example/invitation")
    )
    accounts = kit(directory, infra.redis(), infra).accounts
    admin = accounts.invitations.accept(link.partition("token=")[2], Answer(PASSWORD))
    assert admin.company_id == company["id"] and admin.role == "admin"
    unknown = reechannel(
        infra, "company", "invite", "--company", "no-such-id", "--email", unique_email()
    )
    assert unknown.returncode == 2 and "no company" in unknown.stderr

    opened = accounts.sign_in.sign_in(email, PASSWORD, "", "192.0.2.7")
    disabled = as_json(infra, "person", "disable", admin.id)
    assert disabled == {"id": admin.id, "disabled": True, "sessions_ended": 1}
    assert accounts.sessions.lookup(opened.secret) is None
    twice = reechannel(infra, "person", "disable", admin.id)
    assert twice.returncode == 2 and "disabled already" in twice.stderr

    audit = as_json(infra, "people", "audit", "--since", started.isoformat())
    mine = [e for e in audit["events"] if e["email"] == email]
    assert [e["action"] for e in mine] == [
        "invited",
        "invitation_accepted",
        "signed_in",
        "disabled",
    ]
    assert mine[0]["actor"] == "operator:cli" and mine[2]["address"] == "192.0.2.7"
    assert mine[3]["actor"] == "operator:cli"
    assert all(datetime.fromisoformat(e["at"]) >= started for e in audit["events"])
    text = reechannel(infra, "people", "audit", "--since", started.isoformat())
    assert text.returncode == 0 and f"disabled  {admin.id}  {email}" in text.stdout
