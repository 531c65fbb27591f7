"""The officials' daily digest (issue 21) through a real SMTP server (aiosmtpd), intake and
two review replicas as real processes: each opted-in official receives their side's cases
due and overdue in the side's view and their language, once a day, however many replicas
and operators run it; an official who did not opt in receives nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from services.review.app import MIGRATIONS as REVIEW_MIGRATIONS
from services.review.console.pages import templates_for
from services.review.digest import DailyDigest
from services.review.domain.digest import is_digest_time
from services.review.domain.protocol import Protocol
from services.review.settings import ReviewSettings
from shared.config import CommonSettings
from shared.db import make_engine, migrate
from shared.directory import open_directory
from tests.integration.conftest import application
from tests.integration.test_notify_email import Inbox
from tests.people import console, enrol_official, enrol_officials, form_nonce, settings_of
from tests.support import ROOT, Infra, ServiceProcess, free_port, operator, wait_until

# Two review replicas, intake and the operator's commands on a shared machine.
pytestmark = pytest.mark.timeout(300)

# The company's name is hidden from China (visibility: `applicant`): planted, it must reach
# the EU's digest and never the CN one.
SENTINEL = f"Sentinel Magnets {uuid.uuid4().hex[:8]} GmbH"


@dataclass
class Deployment:
    infra: Infra
    inbox: Inbox
    intake: ServiceProcess
    reviews: list[ServiceProcess]
    officials: dict[str, dict[str, Any]]
    eu_only: str  # the reference of a case in EU screening
    sent_to_cn: str  # the reference of a case in CN review
    smtp_url: str

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """`reechannel ARGS --json` with the reviews' mail and digest settings (or `env`'s)."""
        settings = {"REE_SMTP_URL": self.smtp_url, "REE_DIGEST_DAYS": "30", **env}
        return subprocess.run(
            [sys.executable, "-m", "reechannel.cli", *args, "--json"],
            env=self.infra.env(**settings),
            cwd=ROOT,
            capture_output=True,
            text=True,
        )

    def mails(self, official: str, count: int = 1) -> list[EmailMessage]:
        address = self.officials[official]["email"]
        try:
            return wait_until(
                lambda: (found := self.inbox.to(address)) and len(found) >= count and found,
                timeout=60,
                what=f"{count} digest(s) to {official}",
            )
        except BaseException:
            logs = "\n".join(
                line
                for r in self.reviews
                for line in r.log_path.read_text().splitlines()
                if ("digest" in line or "ERROR" in line) and "DEBUG" not in line
            )[:6000]
            directory = open_directory(settings_of(self.infra))
            readers = directory.digest_readers()
            directory.engine.dispose()
            raise AssertionError(
                f"no digest to {official}; readers {readers}; the reviews' logs:\n{logs}"
            ) from None

    def runs(self) -> list[tuple[str, date, int, bool]]:
        """The digests table: (official, day, attempts, sent)."""
        settings = CommonSettings(
            DATABASE_URL=self.infra.database_url,
            REE_DATA_DIR=self.infra.data_dir,
            REE_SCHEMA_PREFIX=self.infra.prefix,
        )
        engine = make_engine(settings, "review", pool_size=1)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    text("SELECT official_id, day, attempts, sent_at FROM digests")
                ).all()
        finally:
            engine.dispose()
        return [
            (o, d if isinstance(d, date) else date.fromisoformat(d), a, s is not None)
            for o, d, a, s in rows
        ]


def _text(mail: EmailMessage) -> tuple[str, str]:
    plain, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert plain is not None and html is not None
    return str(plain.get_content()), str(html.get_content())


def _case_id(review: ServiceProcess, token: str, reference: str) -> str:
    with review.client(token) as c:
        found = wait_until(
            lambda: c.get("/v1/cases", params={"q": reference}).json()["items"],
            timeout=30,
            what=f"review opened {reference}",
        )
    return str(found[0]["id"])


def _act(review: ServiceProcess, token: str, case_id: str, action: str, **params: Any) -> None:
    with review.client(token) as c:
        version = c.get(f"/v1/cases/{case_id}").json()["version"]
        r = c.post(
            f"/v1/cases/{case_id}/actions",
            json={"action": action, **params},
            headers={"If-Match": str(version)},
        )
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def deployment(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    own = infra.isolated(tmp_path_factory.mktemp("digest"))
    inbox = Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    env = own.env(
        REE_SMTP_URL=f"smtp://127.0.0.1:{port}",
        REE_SMTP_FROM="digest@ree.example",
        REE_DIGEST_HOUR="0",
        REE_DIGEST_DAYS="30",
        REE_DIGEST_CHECK_SECONDS="0.5",
        REE_LOG_LEVEL="INFO",
    )
    intake = ServiceProcess("intake", own.env()).start()
    reviews = [ServiceProcess("review", env).start() for _ in range(2)]
    try:
        officials = enrol_officials(own)
        company = operator(
            own, "company", "create", "--name", SENTINEL, "--eori", "DE1234567890123"
        )
        refs = []
        with intake.client(company["api_key"]) as c:
            for _ in range(2):
                r = c.post("/v1/applications", json=application())
                assert r.status_code == 201, r.text
                refs.append(r.json()["reference"])
        eu, cn = officials["eu_officer"]["token"], officials["cn_officer"]["token"]
        review = reviews[0]
        ids = [_case_id(review, eu, ref) for ref in refs]
        _act(review, eu, ids[1], "admit")
        with review.client(officials["eu_supervisor"]["token"]) as c:
            assert c.post("/v1/priority-lists", json={"case_ids": [ids[1]]}).status_code == 201
        _act(review, cn, ids[1], "acknowledge", accepted_on=date.today().isoformat())
        yield Deployment(
            own, inbox, intake, reviews, officials, refs[0], refs[1], env["REE_SMTP_URL"]
        )
    finally:
        for service in (*reviews, intake):
            service.stop()
        smtp.stop()
        own.drop_schemas()


def test_each_opted_in_official_receives_their_sides_digest_once_in_their_language(
    deployment: Deployment,
) -> None:
    d = deployment
    eu, cn = d.officials["eu_officer"], d.officials["cn_officer"]
    assert operator(d.infra, "official", "digest", eu["id"], "on") == {
        "id": eu["id"],
        "digest": True,
    }
    # The CN officer opts in in the console's preferences, in Chinese.
    with console(d.reviews[1].url, cn) as browser:
        page = browser.get("/preferences")
        assert page.status_code == 200 and 'name="digest"' in page.text
        saved = browser.post(
            "/preferences", data={"csrf": form_nonce(page), "lang": "zh-Hans", "digest": "on"}
        )
        assert saved.status_code == 303 and saved.headers["location"] == "/preferences?saved=1"
        again = browser.get("/preferences")
        assert "checked" in again.text and again.headers["content-language"] == "zh-Hans"
    now = datetime.now(UTC)
    if not (is_digest_time(now, 0, "EU") and is_digest_time(now, 0, "CN")):
        # Not a working day of both sides: review sends none by itself today; the operator's.
        assert d.run("digest", "send").returncode == 0
    [eu_mail] = d.mails("eu_officer")
    [cn_mail] = d.mails("cn_officer")

    assert eu_mail["From"] == "digest@ree.example"
    assert "overdue" in eu_mail["Subject"]
    eu_text, eu_html = _text(eu_mail)
    assert d.eu_only in eu_text and d.sent_to_cn in eu_text
    assert SENTINEL in eu_text and SENTINEL in eu_html
    assert "EU screening" in eu_text and "/cases/" in eu_text

    raw = cn_mail.as_string()
    cn_text, cn_html = _text(cn_mail)
    assert cn_mail["Subject"].startswith("REE Channel ") and "件已逾期" in cn_mail["Subject"]
    assert d.sent_to_cn in cn_text and "中方审查" in cn_text, "CN's case, its state in Chinese"
    assert d.eu_only not in raw, "a case not sent to China is not in the CN digest"
    assert SENTINEL not in cn_text and SENTINEL not in cn_html, "nor what China may not see"
    assert '<html lang="zh-Hans">' in cn_html

    # Two operators at once, while both replicas tick: nobody is sent a second digest today.
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _i: d.run("digest", "send"), range(2)))
    assert [a.returncode for a in answers] == [0, 0], [a.stderr for a in answers]
    for answer in answers:
        outcomes = {r["email"]: r["outcome"] for r in json.loads(answer.stdout)["digests"]}
        assert outcomes == {eu["email"]: "taken", cn["email"]: "taken"}, "opted-out: absent"
    assert len(d.inbox.to(eu["email"])) == 1 and len(d.inbox.to(cn["email"])) == 1
    today = {(o, a, s) for o, day, a, s in d.runs() if day == date.today()}
    assert today == {(eu["id"], 1, True), (cn["id"], 1, True)}
    for opted_out in ("eu_supervisor", "cn_supervisor"):
        assert d.inbox.to(d.officials[opted_out]["email"]) == []


def test_a_refused_digest_is_logged_and_sent_on_the_next_run_and_the_horizon_is_a_setting(
    deployment: Deployment,
) -> None:
    """REE_DIGEST_DAYS: with one working day, the case due in 20 (CN review) is not listed."""
    d = deployment
    eu = d.officials["eu_officer"]
    assert operator(d.infra, "official", "digest", eu["id"], "on")["digest"] is True
    # The operator sets an official's language (the console's too) as a company person's.
    chosen = operator(d.infra, "person", "language", eu["email"], "zh-CN")
    assert chosen == {"id": eu["id"], "language": "zh-Hans"}
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    before = len(d.inbox.to(eu["email"]))
    d.inbox.refuse[eu["email"]] = 1
    failed = d.run("digest", "send", "--date", tomorrow, REE_DIGEST_DAYS="1")
    assert failed.returncode == 1
    outcomes = {r["email"]: r["outcome"] for r in json.loads(failed.stdout)["digests"]}
    assert outcomes[eu["email"]] == "failed"
    [(attempts, sent)] = [
        (a, s) for o, day, a, s in d.runs() if o == eu["id"] and day.isoformat() == tomorrow
    ]
    assert (attempts, sent) == (1, False)
    retried = d.run("digest", "send", "--date", tomorrow, REE_DIGEST_DAYS="1")
    assert retried.returncode == 0, retried.stderr
    mails = d.mails("eu_officer", before + 1)
    text_part, _html = _text(mails[-1])
    assert d.sent_to_cn not in text_part, "due in 20 working days: past a horizon of one"
    assert "摘要" in mails[-1]["Subject"] and "您好" in text_part, "now in Chinese"


def test_without_smtp_no_digest_is_sent_and_the_log_and_the_operator_say_so(
    deployment: Deployment,
) -> None:
    d = deployment
    refused = d.run("digest", "send", REE_SMTP_URL="")
    assert refused.returncode == 2 and "REE_SMTP_URL is not set" in refused.stderr
    plain = ServiceProcess("review", d.infra.env(REE_LOG_LEVEL="INFO")).start()
    try:
        wait_until(
            lambda: "no daily digest is e-mailed" in plain.log_path.read_text(),
            what="review said it sends no digest",
        )
    finally:
        plain.stop()


def test_the_digest_hour_decides_when_a_replicas_tick_sends_it(tmp_path: Path) -> None:
    """REE_DIGEST_HOUR: before the hour of a working day, a tick sends nothing; from it on,
    the digest (on SQLite files, a real SMTP server)."""
    inbox = Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    settings = ReviewSettings(
        DATABASE_URL="",
        REE_DATA_DIR=str(tmp_path),
        REE_SMTP_URL=f"smtp://127.0.0.1:{port}",
        REE_DIGEST_HOUR="9",
    )
    engine = make_engine(settings, settings.service_name, pool_size=1)
    directory = open_directory(settings)
    try:
        migrate(engine, REVIEW_MIGRATIONS)
        official = enrol_official(directory, "Eva Europa", "EU", "officer")
        directory.set_digest(official["id"], True)
        protocol = Protocol.load()
        digest = DailyDigest(
            engine,
            directory,
            protocol,
            templates_for(protocol),
            settings,
            settings.console_url,
            settings.digest_days,
            settings.digest_hour,
        )
        tuesday = datetime(2026, 12, 1, tzinfo=UTC)
        assert digest.tick(tuesday.replace(hour=8, minute=59)) == 0
        assert inbox.to(official["email"]) == []
        assert digest.tick(tuesday.replace(hour=9)) == 1
        [mail] = inbox.to(official["email"])
        assert mail["Subject"] == "REE Channel digest of 2026-12-01: 0 overdue, 0 due soon"
        assert digest.tick(tuesday.replace(hour=10)) == 0, "once a day"
    finally:
        engine.dispose()
        directory.engine.dispose()
        smtp.stop()
