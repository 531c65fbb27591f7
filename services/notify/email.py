"""The e-mail channel: a message written for one person from its webhook body, sent over
SMTP (shared/mail.py) as one attempt of a delivery.

The e-mail is rendered from the webhook body only, which carries only what the applicant
may see (domain/payloads.py, an allow-list): nothing hidden can reach an e-mail that a
webhook would not carry. The texts are Jinja2 templates, one per type and language
(`templates/email/<language>/<type>.txt`, English for now), so that they can be wrapped
for translation; the HTML part is the same text in paragraphs, escaped.

An attempt's answer is the SMTP server's reply code (250: accepted), recorded like an HTTP
status: a 2xx is success, anything else is tried again on the delivery's retry schedule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.notify.store.claims import Job
from services.notify.store.recipients import MAILTO
from services.notify.transport import MAX_ERROR_LENGTH, Response
from shared.mail import MailSettings, send_message

TEMPLATES = Path(__file__).parent / "templates" / "email"
LANGUAGE = "en"
ACCEPTED = 250


def _words(value: Any) -> str:
    return str(value).replace("_", " ")


def _day(value: Any) -> str:
    return str(value)[:10]


@dataclass(frozen=True)
class Written:
    subject: str
    text: str
    html: str


class Writer:
    """Writes the e-mail of a webhook body in a language."""

    def __init__(self, language: str = LANGUAGE) -> None:
        self.language = language
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES / language),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self.env.filters["words"] = _words
        self.env.filters["day"] = _day

    def write(self, body: dict[str, Any]) -> Written:
        template = self.env.get_template(f"{body['type']}.txt")
        values = {"data": body["data"], "timestamp": body["timestamp"]}
        subject = "".join(template.blocks["subject"](template.new_context(values))).strip()
        text = template.render(values)
        paragraphs = [p.splitlines() for p in text.strip().split("\n\n")]
        html = self.env.get_template("_base.html").render(
            language=self.language, subject=subject, paragraphs=paragraphs
        )
        return Written(subject, text, html)


def email_message(written: Written, sender: str, to: str, message_id: str) -> EmailMessage:
    """Plain text and HTML as alternatives; the same Message-ID on every attempt, so a
    mail client shows a retried e-mail once."""
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, to, written.subject
    mail["Message-ID"] = f"<{message_id}@reechannel>"
    mail.set_content(written.text)
    mail.add_alternative(written.html, subtype="html")
    return mail


class Mailer:
    """Sends the attempts of e-mail deliveries."""

    def __init__(self, settings: MailSettings, writer: Writer | None = None) -> None:
        self.settings = settings
        self.writer = writer or Writer()

    async def send(self, job: Job) -> Response:
        """One attempt: the e-mail written and handed to the SMTP server. Never raises for
        the server's failings: they are the answer."""
        if not self.settings.enabled:
            return Response(None, None, "REE_SMTP_URL is not set; the e-mail waits for it")
        to = job.url.removeprefix(MAILTO)
        written = self.writer.write(json.loads(job.body))
        mail = email_message(written, self.settings.smtp_from, to, job.webhook_id)
        try:
            await send_message(self.settings, mail)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0]
            return _refused(refused.code, refused.message)
        except aiosmtplib.SMTPResponseException as exc:
            return _refused(exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Response(None, None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH])
        return Response(ACCEPTED, None, None)


def _refused(code: int, message: str) -> Response:
    return Response(code, None, f"SMTP {code}: {message}"[:MAX_ERROR_LENGTH])


def is_email(job: Job) -> bool:
    return job.url.startswith(MAILTO)
