"""The e-mail channel: a message written for one person from its webhook body, in their
language, sent over SMTP (shared/mail.py) as one attempt of a delivery.

The e-mail is rendered from the webhook body only, which carries only what the applicant
may see (domain/payloads.py, an allow-list): nothing hidden can reach an e-mail that a
webhook would not carry. The texts are Jinja2 templates, one per type
(`templates/email/<type>.txt`), written in English and translated through the `mail`
gettext catalogue (`translations/<locale>/LC_MESSAGES/mail.po`, `make i18n`), dates in the
language's Babel format; the HTML part is the same text in paragraphs, escaped. A person's
language is read when their e-mail is written, so a change applies to the next e-mail.

An attempt's answer is the SMTP server's reply code (250: accepted), recorded like an HTTP
status: a 2xx is success, anything else is tried again on the delivery's retry schedule.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
from sqlalchemy.engine import Engine

from services.notify import wording
from services.notify.store.claims import Job
from services.notify.store.recipients import MAILTO, language_of
from services.notify.transport import MAX_ERROR_LENGTH, Response
from shared.i18n import DEFAULT_LANGUAGE, LANGUAGES, Languages, named
from shared.mail import MailSettings, alternative_message, send_message

NOTIFY = Path(__file__).parent
TEMPLATES = NOTIFY / "templates" / "email"
CATALOGUES = NOTIFY / "translations"
CATALOGUE = "mail"
ACCEPTED = 250


def _filters(tag: str, gettext: Callable[[str], str]) -> Mapping[str, Callable[..., Any]]:
    return {
        "words": wording.words,
        "status": wording.status_words(gettext),
        "named": named(tag),
    }


@dataclass(frozen=True)
class Written:
    subject: str
    text: str
    html: str


class Writer:
    """Writes the e-mail of a webhook body in each of the channel's languages."""

    def __init__(self) -> None:
        self.languages = Languages(TEMPLATES, CATALOGUES, CATALOGUE, LANGUAGES, _filters)

    def write(self, body: dict[str, Any], language: str = DEFAULT_LANGUAGE) -> Written:
        """The e-mail in `language` (the default for one the channel does not write in)."""
        tag = language if self.languages.is_supported(language) else DEFAULT_LANGUAGE
        env = self.languages.environments[tag]
        template = env.get_template(f"{body['type']}.txt")
        values = {"data": body["data"], "timestamp": body["timestamp"]}
        subject = "".join(template.blocks["subject"](template.new_context(values))).strip()
        text = template.render(values)
        paragraphs = [p.splitlines() for p in text.strip().split("\n\n")]
        html = env.get_template("_base.html").render(subject=subject, paragraphs=paragraphs)
        return Written(subject, text, html)


def email_message(written: Written, sender: str, to: str, message_id: str) -> EmailMessage:
    return alternative_message(sender, to, written.subject, written.text, written.html, message_id)


class Mailer:
    """Sends the attempts of e-mail deliveries."""

    def __init__(
        self, settings: MailSettings, directory: Engine | None = None, writer: Writer | None = None
    ) -> None:
        self.settings = settings
        # Where the people's languages are read; without it every e-mail is in English.
        self.directory = directory
        self.writer = writer or Writer()

    async def send(self, job: Job) -> Response:
        """One attempt: the e-mail written and handed to the SMTP server. Never raises for
        the server's failings: they are the answer."""
        if not self.settings.enabled:
            return Response(None, None, "REE_SMTP_URL is not set; the e-mail waits for it")
        to = job.url.removeprefix(MAILTO)
        language = await asyncio.to_thread(self._language, to)
        written = self.writer.write(json.loads(job.body), language)
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

    def _language(self, address: str) -> str:
        if self.directory is None:
            return DEFAULT_LANGUAGE
        return language_of(self.directory, address) or DEFAULT_LANGUAGE


def _refused(code: int, message: str) -> Response:
    return Response(code, None, f"SMTP {code}: {message}"[:MAX_ERROR_LENGTH])


def is_email(job: Job) -> bool:
    return job.url.startswith(MAILTO)
