"""E-mail to a company's people (issue 21), through a real SMTP server (aiosmtpd) and notify
as a real process: what each chose, in order, as text and HTML, retried after a refusal,
with a delivery log; nothing to a person who opted out, nothing hidden in any e-mail."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.notify.domain.payloads import DEFAULT_EMAIL_TYPES, PUBLIC_EVENT_TYPES
from tests.integration.notify_support import (
    Application,
    new_company,
    notify_env,
    staff_member,
    wait_for,
)
from tests.support import ROOT, Infra, ServiceProcess, free_port, operator

HIDDEN = "internal note for the case file"  # the decision's detail, officials' free text


class Inbox:
    """An aiosmtpd handler keeping what it accepted, refusing as told per recipient."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accepted: list[tuple[str, EmailMessage]] = []
        self.refuse: dict[str, int] = {}
        self.refused: list[str] = []

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        [to] = envelope.rcpt_tos
        with self.lock:
            if self.refuse.get(to, 0) > 0:
                self.refuse[to] -= 1
                self.refused.append(to)
                return "451 4.3.0 Try again later"
            content = envelope.original_content or b""
            mail = message_from_bytes(content, policy=policy.default)
            assert isinstance(mail, EmailMessage)
            self.accepted.append((to, mail))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [mail for to, mail in self.accepted if to == address]


@pytest.fixture(scope="module")
def infra(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    own = infra.isolated(tmp_path_factory.mktemp("email"))
    yield own
    own.drop_schemas()


@pytest.fixture(scope="module")
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture(scope="module")
def notify(infra: Infra, inbox: tuple[Inbox, int]) -> Iterator[ServiceProcess]:
    _handler, port = inbox
    env = notify_env(
        infra, REE_SMTP_URL=f"smtp://127.0.0.1:{port}", REE_SMTP_FROM="channel@ree.example"
    )
    service = ServiceProcess("notify", env).start()
    yield service
    service.stop()


def _mails(inbox: Inbox, address: str, count: int) -> list[EmailMessage]:
    def arrived() -> list[EmailMessage] | None:
        mails = inbox.to(address)
        return mails if len(mails) >= count else None

    return wait_for(arrived, what=f"{count} e-mails to {address}")


def _parts(mail: EmailMessage) -> tuple[str, str]:
    assert mail.get_content_type() == "multipart/alternative"
    text, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def _choose(c: httpx.Client, person: dict[str, str], types: list[str]) -> httpx.Response:
    return c.put(f"/v1/people/{person['id']}/notifications", json={"event_types": types})


def _log(c: httpx.Client, person: dict[str, str]) -> list[dict[str, Any]]:
    r = c.get(f"/v1/people/{person['id']}/notifications/deliveries")
    assert r.status_code == 200, r.text
    # In event order (deliveries written in one transaction share their creation time).
    return sorted(r.json()["items"], key=lambda d: str(d["payload"]["timestamp"]))


def test_each_person_is_e_mailed_what_they_chose_in_order_as_text_and_html(
    notify: ServiceProcess, infra: Infra, inbox: tuple[Inbox, int]
) -> None:
    mailbox, _port = inbox
    company = new_company(infra, "Zeta Magnets GmbH")
    eva, ida, otto = (staff_member(infra, company, n) for n in ("Eva", "Ida", "Otto"))
    with notify.client(company["api_key"]) as c:
        defaults = c.get(f"/v1/people/{eva['id']}/notifications")
        assert defaults.json() == {
            "person_id": eva["id"],
            "email": eva["email"],
            "event_types": sorted(DEFAULT_EMAIL_TYPES),
            "language": "en",
        }
        assert _choose(c, otto, []).json()["event_types"] == []
        chosen = _choose(c, ida, ["licence.issued", "application.received"])
        assert chosen.json()["event_types"] == ["application.received", "licence.issued"]
    app = Application(infra, company)
    app.received()
    app.information_requested()
    app.decided("approved")
    app.licence_issued()
    ref = app.reference
    eva_mails = _mails(mailbox, eva["email"], 3)
    assert [m["Subject"] for m in eva_mails] == [
        f"Application {ref}: information requested",
        f"Application {ref} approved",
        f"Licence LIC-{ref} issued for application {ref}",
    ]
    ida_mails = _mails(mailbox, ida["email"], 2)
    assert [m["Subject"] for m in ida_mails] == [
        f"Application {ref} received",
        f"Licence LIC-{ref} issued for application {ref}",
    ]
    text, html = _parts(eva_mails[0])
    assert "End-user statement?" in text and "End-user statement?" in html
    assert "Please answer by 2026-12-10" in text
    assert html.startswith("<!DOCTYPE html>") and "<p>" in html
    text, _html = _parts(eva_mails[2])
    assert "- Dy metal: 100.0 kg" in text
    for mail in eva_mails + ida_mails:
        assert mail["From"] == "channel@ree.example"
        assert HIDDEN not in mail.as_string()
    with notify.client(company["api_key"]) as c:
        # Every person's deliveries of a message are written in one transaction: Eva's are
        # there, so Otto would have his.
        assert _log(c, otto) == []
        log = _log(c, eva)
    assert mailbox.to(otto["email"]) == []
    assert [d["event_type"] for d in log] == [
        "application.information_requested",
        "application.approved",
        "licence.issued",
    ]
    assert all(d["status"] == "succeeded" for d in log)
    assert [[a["status_code"] for a in d["attempts"]] for d in log] == [[250]] * 3


def test_an_e_mail_the_server_refuses_is_sent_again_later_and_both_attempts_are_logged(
    notify: ServiceProcess, infra: Infra, inbox: tuple[Inbox, int]
) -> None:
    mailbox, _port = inbox
    company = new_company(infra, "Eta Wind SE")
    eva = staff_member(infra, company, "Eva")
    mailbox.refuse[eva["email"]] = 1
    with notify.client(company["api_key"]) as c:
        assert _choose(c, eva, ["application.received"]).status_code == 200
        Application(infra, company).received()
        [mail] = _mails(mailbox, eva["email"], 1)
        log = wait_for(
            lambda: (entries := _log(c, eva)) and entries[0]["status"] == "succeeded" and entries,
            what="the delivery succeeded",
        )
    assert mailbox.refused == [eva["email"]]
    [delivery] = log
    assert [(a["status_code"], a["outcome"]) for a in delivery["attempts"]] == [
        (451, "retrying"),
        (250, "succeeded"),
    ]
    assert "451" in delivery["attempts"][0]["error"]
    assert mail["Message-ID"] == f"<{delivery['webhook_id']}@reechannel>"


def test_a_choice_for_another_companys_person_or_of_unknown_events_is_refused(
    notify: ServiceProcess, infra: Infra
) -> None:
    company, other = new_company(infra), new_company(infra)
    eva = staff_member(infra, company, "Eva")
    with notify.client(other["api_key"]) as c:
        assert c.get(f"/v1/people/{eva['id']}/notifications").status_code == 404
        assert _choose(c, eva, ["application.received"]).status_code == 404
        assert c.get(f"/v1/people/{eva['id']}/notifications/deliveries").status_code == 404
    with notify.client(company["api_key"]) as c:
        refused = _choose(c, eva, ["application.received", "case.note_added"])
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "event_types"
        after = c.get(f"/v1/people/{eva['id']}/notifications").json()
    assert after["event_types"] == sorted(DEFAULT_EMAIL_TYPES)


def test_the_same_event_reaches_a_chinese_reader_in_chinese_and_an_english_one_in_english(
    notify: ServiceProcess, infra: Infra, inbox: tuple[Inbox, int]
) -> None:
    mailbox, _port = inbox
    company = new_company(infra, "Theta Motors GmbH")
    eva, li = staff_member(infra, company, "Eva"), staff_member(infra, company, "Li")
    with notify.client(company["api_key"]) as c:
        chosen = c.put(f"/v1/people/{li['id']}/notifications", json={"language": "zh-CN"})
        assert chosen.status_code == 200, chosen.text
        assert chosen.json()["language"] == "zh-Hans", "a Chinese tag is the language written in"
        assert chosen.json()["event_types"] == sorted(DEFAULT_EMAIL_TYPES), "left as it was"
    app = Application(infra, company)
    app.received()
    app.information_requested()
    ref = app.reference
    [english] = _mails(mailbox, eva["email"], 1)
    [chinese] = _mails(mailbox, li["email"], 1)
    assert english["Subject"] == f"Application {ref}: information requested"
    assert chinese["Subject"] == f"申请 {ref}：需要补充信息"
    text, html = _parts(chinese)
    assert text.startswith("您好：") and "请于 2026年12月10日 前答复" in text
    assert '<html lang="zh-Hans">' in html and "End-user statement?" in html
    text, _html = _parts(english)
    assert "Please answer by 2026-12-10" in text


def test_an_unknown_language_is_refused_and_nothing_is_changed(
    notify: ServiceProcess, infra: Infra
) -> None:
    company = new_company(infra)
    eva = staff_member(infra, company, "Eva")
    with notify.client(company["api_key"]) as c:
        refused = c.put(
            f"/v1/people/{eva['id']}/notifications",
            json={"language": "tlh", "event_types": ["application.received"]},
        )
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["language"]
        after = c.get(f"/v1/people/{eva['id']}/notifications").json()
    assert after["language"] == "en"
    assert after["event_types"] == sorted(DEFAULT_EMAIL_TYPES)


def test_the_operator_reads_and_sets_a_persons_e_mail_choices_and_language_as_notify_does(
    notify: ServiceProcess, infra: Infra
) -> None:
    company = new_company(infra)
    eva = staff_member(infra, company, "Eva")
    shown = operator(infra, "person", "notifications", eva["email"])
    assert shown == {
        "person_id": eva["id"],
        "email": eva["email"],
        "event_types": sorted(DEFAULT_EMAIL_TYPES),
        "language": "en",
    }
    chosen = operator(
        infra,
        "person",
        "notifications",
        eva["email"],
        "--events",
        "licence.issued,application.received",
    )
    assert chosen["event_types"] == ["application.received", "licence.issued"]
    assert operator(infra, "person", "notifications", eva["email"], "--none")["event_types"] == []
    every = operator(infra, "person", "notifications", eva["email"], "--all")["event_types"]
    assert every == sorted(PUBLIC_EVENT_TYPES), "--all: every type a person may be e-mailed about"
    assert operator(infra, "person", "language", eva["email"], "zh-Hans")["language"] == "zh-Hans"
    with notify.client(company["api_key"]) as c:
        seen = c.get(f"/v1/people/{eva['id']}/notifications").json()
    assert seen["event_types"] == every and seen["language"] == "zh-Hans"
    command = ["person", "notifications", eva["email"], "--events", "case.note_added"]
    refused = subprocess.run(
        [sys.executable, "-m", "reechannel.cli", *command],
        env=infra.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "event_types: unknown event types" in refused.stderr
    assert operator(infra, "person", "notifications", eva["email"])["event_types"] == every
