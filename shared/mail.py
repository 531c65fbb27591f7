"""Sending e-mail through `REE_SMTP_URL`: one mechanism for every service that sends any.

`REE_SMTP_URL` is `smtp://[user:password@]host[:port]` (STARTTLS when the server offers
it) or `smtps://...` (TLS from the start). Unset, nothing is sent: the callers say what
they do instead (the operator's command prints the link; notify keeps no e-mail recipients).
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib
from pydantic import Field, model_validator

from shared.config import CommonSettings


class MailSettings(CommonSettings):
    smtp_url: str | None = Field(None, alias="REE_SMTP_URL")
    smtp_from: str = Field("REE Channel <no-reply@localhost>", alias="REE_SMTP_FROM")
    smtp_timeout_seconds: float = Field(30.0, gt=0, alias="REE_SMTP_TIMEOUT_SECONDS")

    @model_validator(mode="after")
    def _check_url(self) -> MailSettings:
        # A typo in the URL stops the service at start, not at the first e-mail.
        if self.smtp_url:
            url = urlsplit(self.smtp_url)
            if url.scheme not in ("smtp", "smtps") or not url.hostname:
                raise ValueError("REE_SMTP_URL must be smtp://host[:port] or smtps://host[:port]")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.smtp_url)


def text_message(sender: str, to: str, subject: str, text: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, to, subject
    mail.set_content(text)
    return mail


def alternative_message(
    sender: str, to: str, subject: str, text: str, html: str, message_id: str | None = None
) -> EmailMessage:
    """Plain text and HTML as alternatives (`multipart/alternative`), with a Message-ID of
    `<message_id@reechannel>` when given (the same on every attempt: a mail client shows a
    retried e-mail once)."""
    mail = text_message(sender, to, subject, text)
    if message_id is not None:
        mail["Message-ID"] = f"<{message_id}@reechannel>"
    mail.add_alternative(html, subtype="html")
    return mail


async def send_message(settings: MailSettings, mail: EmailMessage) -> None:
    """Hand one message to the SMTP server; raises aiosmtplib's errors as they come."""
    if not settings.smtp_url:
        raise ValueError("REE_SMTP_URL is not set")
    url = urlsplit(settings.smtp_url)
    await aiosmtplib.send(
        mail,
        hostname=url.hostname,
        port=url.port or (465 if url.scheme == "smtps" else 25),
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        use_tls=url.scheme == "smtps",
        timeout=settings.smtp_timeout_seconds,
    )


def send_blocking(settings: MailSettings, mail: EmailMessage) -> None:
    """For the operator's command line, which has no event loop of its own."""
    asyncio.run(send_message(settings, mail))
