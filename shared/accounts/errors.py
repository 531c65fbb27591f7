"""What the account operations refuse, each with the HTTP status a route answers it with
(RFC 9457 problem details) and a message that can be shown to the person as it is.

A refusal's message is a template with its particulars as parameters,
`InvalidInput("no company with id %(id)s", field="company", id=...)`, never a formatted
string: `str(error)` is the English text (a shared.i18n.Message), and a page in another
language shows the template's translation with the same particulars. `make i18n` extracts
the templates (babel.cfg names these classes as keywords for shared/accounts; the fixed
messages below are marked N_), and tests/unit/test_account_error_languages.py fails on a
refusal whose message is not a literal template or has no translation.
"""

from __future__ import annotations

from shared.i18n import N_, Message


class AccountError(ValueError):
    status = 422

    def __init__(self, message: str, field: str | None = None, **params: object) -> None:
        self.message = Message(message, **params)
        super().__init__(self.message)
        self.field = field

    def __str__(self) -> str:
        return self.message  # the Message itself, which knows its template


class InvalidInput(AccountError):
    """An e-mail, name, role, password or code the rules refuse (422)."""


class Conflict(AccountError):
    """The e-mail is someone's already; the person is so already."""

    status = 409


class LinkRefused(Conflict):
    """An invitation or reset link that is unknown, used or expired (409)."""


class NotAllowed(AccountError):
    """The inviter is disabled, or not an admin of that company; the person is disabled
    (a reset link of theirs is refused)."""

    status = 403


class NotFound(AccountError):
    status = 404


class SignInRefused(AccountError):
    """Wrong e-mail, password or code: one message for all, so it tells nothing."""

    status = 403

    def __init__(self) -> None:
        super().__init__(N_("the e-mail address, password or code is wrong"))


class SignInDisabled(AccountError):
    """Right password and code, but the person is disabled (told only to who knows both)."""

    status = 403

    def __init__(self) -> None:
        super().__init__(N_("this account is disabled; ask whoever invited you"))


class SignInDelayed(AccountError):
    """Too many failures lately: try again after `retry_after` seconds (429)."""

    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(N_("too many failed sign-ins; try again in %(n)s s"), n=retry_after)
        self.retry_after = retry_after
