"""Sending a link (invitation, password reset) by e-mail, where SMTP is configured
(shared/mail.py); unset, the caller prints the link instead."""

from __future__ import annotations

from shared.accounts.models import Invitation
from shared.mail import MailSettings, send_blocking, text_message

INVITATION_SUBJECT = "Your REE Channel invitation"


def invitation_text(invitation: Invitation, url: str) -> str:
    """The e-mail of an invitation (an operator's at the command line, an admin's in the
    portal): who it is for, the link, until when it works."""
    return (
        f"Hello {invitation.name},\n\nyou are invited to the REE Channel as "
        f"{invitation.role}. Open this link to set your password (and second factor):\n\n"
        f"{url}\n\nIt works once, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC.\n"
    )


def send_link_blocking(settings: MailSettings, to: str, subject: str, text: str) -> None:
    """For the operator's command line, which has no event loop of its own."""
    send_blocking(settings, text_message(settings.smtp_from, to, subject, text))
