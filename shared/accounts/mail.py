"""Sending a link (invitation, password reset) by e-mail, where SMTP is configured
(shared/mail.py); unset, the caller prints the link instead."""

from __future__ import annotations

from shared.mail import MailSettings, send_blocking, text_message


def send_link_blocking(settings: MailSettings, to: str, subject: str, text: str) -> None:
    """For the operator's command line, which has no event loop of its own."""
    send_blocking(settings, text_message(settings.smtp_from, to, subject, text))
