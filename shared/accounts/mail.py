"""Sending a link (invitation, password reset) by e-mail, where SMTP is configured.

`REE_SMTP_URL` is `smtp://[user:password@]host[:port]` (STARTTLS when the server offers
it) or `smtps://...` (TLS from the start); unset, the caller prints the link instead.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib
from pydantic import Field

from shared.config import CommonSettings


class MailSettings(CommonSettings):
    smtp_url: str | None = Field(None, alias="REE_SMTP_URL")
    smtp_from: str = Field("REE Channel <no-reply@localhost>", alias="REE_SMTP_FROM")
    smtp_timeout_seconds: float = Field(30.0, gt=0, alias="REE_SMTP_TIMEOUT_SECONDS")


def message(sender: str, to: str, subject: str, text: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, to, subject
    mail.set_content(text)
    return mail


async def send(settings: MailSettings, to: str, subject: str, text: str) -> None:
    if not settings.smtp_url:
        raise ValueError("REE_SMTP_URL is not set")
    url = urlsplit(settings.smtp_url)
    if url.scheme not in ("smtp", "smtps") or not url.hostname:
        raise ValueError("REE_SMTP_URL must be smtp://host[:port] or smtps://host[:port]")
    await aiosmtplib.send(
        message(settings.smtp_from, to, subject, text),
        hostname=url.hostname,
        port=url.port or (465 if url.scheme == "smtps" else 25),
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        use_tls=url.scheme == "smtps",
        timeout=settings.smtp_timeout_seconds,
    )


def send_blocking(settings: MailSettings, to: str, subject: str, text: str) -> None:
    """For the operator's command line, which has no event loop of its own."""
    asyncio.run(send(settings, to, subject, text))
