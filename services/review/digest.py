"""The officials' daily digest: each official who opted in is e-mailed, once a working day,
their side's open cases overdue and due within `REE_DIGEST_DAYS` working days.

The cases are read by the queue's one query in the side's view (queue.deadline_rows: CN
only the cases sent to China, only the fields it may see), chosen by domain/digest.py,
written in the official's language from the console's templates and catalogue
(`templates/email/digest.*`) and sent through shared/mail.py.

Exactly once per official and day, however many replicas tick: a `digests` row keyed by
(official, day) is claimed before the e-mail is sent (an insert that only one transaction
wins, or taking over a claim released by a failed send or left by a sender that died); it
is marked sent after the SMTP server accepted it. A failed send releases the claim and is
logged, so the next tick tries again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Literal

import aiosmtplib
from sqlalchemy import or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from services.review.domain.digest import Digest, digest_of, horizon, is_digest_time
from services.review.domain.protocol import Protocol
from services.review.queue import deadline_rows
from services.review.store import DigestRun
from shared.db import session_scope, utcnow
from shared.directory import DigestReader, Directory
from shared.i18n import Languages
from shared.mail import MailSettings, alternative_message, send_blocking

log = logging.getLogger("reechannel.review.digest")

# A claim not marked sent after this long belonged to a sender that died: another may take it.
CLAIM_LEASE = timedelta(minutes=10)
MAX_ERROR = 500
Outcome = Literal["sent", "taken", "failed"]


@dataclass(frozen=True)
class Sent:
    """What became of one official's digest of a day."""

    official_id: str
    email: str
    outcome: Outcome  # taken: sent already, or being sent by another replica
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"official_id": self.official_id, "email": self.email, "outcome": self.outcome}


@dataclass(frozen=True)
class Written:
    subject: str
    text: str
    html: str


class DailyDigest:
    """Writes and sends the officials' digests over review's database and the directory."""

    def __init__(
        self,
        engine: Engine,
        directory: Directory,
        protocol: Protocol,
        languages: Languages,
        mail: MailSettings,
        console_url: str,
        working_days: int,
        hour: int,
    ) -> None:
        self.engine = engine
        self.directory = directory
        self.protocol = protocol
        self.languages = languages
        self.mail = mail
        self.console_url = console_url.rstrip("/")
        self.working_days = working_days
        self.hour = hour
        self.open_states = [s for s in protocol.states if not protocol.is_terminal(s)]
        self.said_disabled = False

    def tick(self, now: datetime | None = None) -> int:
        """Send today's digest of every official whose side's digest is due by now (each
        once); how many were sent. Nothing without SMTP (said in the log, once)."""
        if not self.mail.enabled:
            if not self.said_disabled:
                log.info("REE_SMTP_URL is not set: no daily digest is e-mailed to officials")
                self.said_disabled = True
            return 0
        now = now or utcnow()
        readers = [
            r
            for r in self.directory.digest_readers()
            if is_digest_time(now, self.hour, r.side)  # type: ignore[arg-type]
        ]
        return sum(self.send(r, now.date()).outcome == "sent" for r in readers)

    def send_all(self, day: date) -> list[Sent]:
        """Every opted-in official's digest of `day`, working day or not (the operator's
        `reechannel digest send`); those sent already are left as they are."""
        return [self.send(reader, day) for reader in self.directory.digest_readers()]

    def send(self, reader: DigestReader, day: date) -> Sent:
        """One official's digest of `day`: claimed, written, sent, marked (or released)."""
        if not claim(self.engine, reader.id, day, utcnow()):
            return Sent(reader.id, reader.email, "taken")
        try:
            written = self.write(reader, self.digest(reader.side, day))
            send_blocking(self.mail, self.message(written, reader.email))
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
            release(self.engine, reader.id, day, error)
            log.warning(
                "digest for %s of %s not sent, retried next tick: %s", reader.id, day, error
            )
            return Sent(reader.id, reader.email, "failed", error)
        except BaseException:
            release(self.engine, reader.id, day, "not sent: the sender failed")
            raise
        mark_sent(self.engine, reader.id, day, utcnow())
        log.info("digest for %s of %s sent", reader.id, day)
        return Sent(reader.id, reader.email, "sent")

    def digest(self, side: str, day: date) -> Digest:
        until = horizon(side, day, self.working_days)  # type: ignore[arg-type]
        with Session(self.engine) as session:
            rows = deadline_rows(session, side, self.open_states, until, day)  # type: ignore[arg-type]
        return digest_of(rows, day, until, self.working_days)

    def write(self, reader: DigestReader, digest: Digest) -> Written:
        """The digest in the official's language (the default for none chosen)."""
        lang = self.languages.negotiate(reader.language, None)
        env = self.languages.environments[lang]
        values = {
            "digest": digest,
            "reader": reader,
            "console_url": self.console_url,
        }
        subject = " ".join(env.get_template("email/digest_subject.txt").render(values).split())
        return Written(
            subject,
            env.get_template("email/digest.txt").render(values),
            env.get_template("email/digest.html").render(values, subject=subject),
        )

    def message(self, written: Written, to: str) -> EmailMessage:
        return alternative_message(
            self.mail.smtp_from, to, written.subject, written.text, written.html
        )


def _insert(engine: Engine) -> Any:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(DigestRun.__table__)  # type: ignore[attr-defined]


def claim(engine: Engine, official_id: str, day: date, now: datetime) -> bool:
    """Take the official's digest of `day` to send it: True for exactly one caller until it
    is released (a failed send) or its lease runs out; never once it was sent."""
    key = col(DigestRun.official_id)
    # RETURNING tells who won: a driver's rowcount of an upsert is not always known (-1).
    with session_scope(engine) as session:
        inserted = session.execute(
            _insert(engine)
            .values(official_id=official_id, day=day, claimed_at=now, attempts=0)
            .on_conflict_do_nothing(index_elements=["official_id", "day"])
            .returning(key)
        ).first()
        if inserted is not None:
            return True
        taken = session.execute(
            update(DigestRun)
            .where(
                key == official_id,
                col(DigestRun.day) == day,
                col(DigestRun.sent_at).is_(None),
                or_(
                    col(DigestRun.claimed_at).is_(None),
                    col(DigestRun.claimed_at) < now - CLAIM_LEASE,
                ),
            )
            .values(claimed_at=now)
            .returning(key)
        ).first()
        return taken is not None


def mark_sent(engine: Engine, official_id: str, day: date, now: datetime) -> None:
    with session_scope(engine) as session:
        session.execute(
            update(DigestRun)
            .where(col(DigestRun.official_id) == official_id, col(DigestRun.day) == day)
            .values(sent_at=now, attempts=DigestRun.attempts + 1, last_error=None)
        )


def release(engine: Engine, official_id: str, day: date, error: str) -> None:
    """Give the claim back after a failed send, so that the next tick sends it again."""
    with session_scope(engine) as session:
        session.execute(
            update(DigestRun)
            .where(col(DigestRun.official_id) == official_id, col(DigestRun.day) == day)
            .values(claimed_at=None, attempts=DigestRun.attempts + 1, last_error=error)
        )
