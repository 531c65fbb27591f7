"""Passwords: the rules a new one must meet, and argon2id hashing.

The list of common passwords is the 10,000 most frequent of zxcvbn's (PyPI `zxcvbn` 4.5.0,
MIT licence, `frequency_lists.py`, list `passwords`), shipped here as data so no package is
needed at run time. Most are shorter than the 12 characters required anyway; the list
catches the long ones (`qwertyuiopasdf`…) and a passphrase made of them repeated.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared.accounts.errors import InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 256
COMMON_PASSWORDS = Path(__file__).parent / "common-passwords.txt"


class WeakPassword(InvalidInput):
    """A new password that the rules refuse (a 422 on the password field); the message
    says which rule."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message, "password", **params)


@cache
def common_passwords() -> frozenset[str]:
    return frozenset(COMMON_PASSWORDS.read_text().split())


def check_new_password(password: str, email: str = "") -> None:
    """Refuse a password shorter than 12 characters, too long, common, or the e-mail."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword("the password must be at least %(n)s characters", n=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        raise WeakPassword("the password must be at most %(n)s characters", n=MAX_LENGTH)
    folded = password.casefold()
    if folded in common_passwords() or _repeats_a_common_one(folded):
        raise WeakPassword("the password is one of the most common passwords")
    if email and folded in {email.casefold(), email.casefold().partition("@")[0]}:
        raise WeakPassword("the password must not be the e-mail address")


def _repeats_a_common_one(folded: str) -> bool:
    # "password" three times is as guessable as "password".
    for size in range(1, len(folded) // 2 + 1):
        if len(folded) % size == 0 and folded[:size] * (len(folded) // size) == folded:
            unit = folded[:size]
            return unit in common_passwords() or len(set(unit)) == 1
    return False


class Passwords:
    """argon2id hashes (argon2-cffi's defaults: RFC 9106's second recommended profile).

    `verify` is the only place a password is compared; sign-in calls it exactly once per
    attempt, against a dummy hash when the e-mail is nobody's, so the two cost the same.
    """

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches; with no hash, the same work against a dummy one."""
        if password_hash is None:
            if self._dummy is None:
                self._dummy = self.hasher.hash("dummy password, never anyone's")
            password_hash = self._dummy
            matched = False
        else:
            matched = True
        try:
            self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return matched
