"""Sign-in with e-mail, password and code, and sign-out.

Every attempt costs one argon2id verification, whether or not the e-mail is anyone's (a
dummy hash stands in), and every refusal says the same; only someone who gave the right
password and code learns that the account is disabled. A code is taken once
(shared/accounts/factor.py). Failures slow further attempts down per account and per client
address (shared/accounts/throttle.py, in Redis). A page for one kind of person (the
officials' console, the companies' portal) signs in only that kind: anyone else is as
nobody there.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from shared.accounts import audit
from shared.accounts.audit import Action
from shared.accounts.errors import InvalidInput, SignInDelayed, SignInDisabled, SignInRefused
from shared.accounts.factor import CodeCheck, take_code
from shared.accounts.models import Person, PersonKind
from shared.accounts.passwords import MAX_LENGTH, Passwords
from shared.accounts.people import by_email, normalise_email
from shared.accounts.sessions import Sessions
from shared.accounts.throttle import SignInThrottle
from shared.db import session_scope


@dataclass(frozen=True)
class Opened:
    """A sign-in that succeeded: the session's secret (for the cookie) and the person."""

    secret: str
    person: Person


class SignIn:
    def __init__(
        self, engine: Engine, passwords: Passwords, sessions: Sessions, throttle: SignInThrottle
    ) -> None:
        self.engine = engine
        self.passwords = passwords
        self.sessions = sessions
        self.throttle = throttle

    def sign_in(
        self, email: str, password: str, code: str, address: str, kind: str | None = None
    ) -> Opened:
        """A session for the person, if the password and code are theirs; `kind` (official,
        staff): only a person of that kind."""
        typed = email.strip().lower()[:254]
        wait_ms = self.throttle.wait_ms(typed, address)
        if wait_ms > 0:
            audit.record_alone(self.engine, Action.sign_in_delayed, email=typed, address=address)
            raise SignInDelayed(retry_after=-(-wait_ms // 1000))
        person = self._person(typed)
        if person is not None and kind is not None and person.kind != kind:
            person = None
        # Always exactly one verification: against the person's hash, or a dummy one.
        matched = self.passwords.verify(
            None if person is None else person.password_hash, password[:MAX_LENGTH]
        )
        if not matched or person is None:
            self._failed(typed, address, person, "wrong password")
            raise SignInRefused()
        enabled = person.disabled_at is None
        with session_scope(self.engine) as session:
            checked = _second_factor(session, person, code, claim=enabled)
            if checked == CodeCheck.accepted and enabled:
                secret = self.sessions.open(session, person.id, address[:64])
                audit.record(session, Action.signed_in, person, actor=person.id, address=address)
        if checked != CodeCheck.accepted:
            self._failed(typed, address, person, checked.value)
            raise SignInRefused()
        if not enabled:
            self._failed(typed, address, person, "disabled")
            raise SignInDisabled()
        self.throttle.succeeded(typed)
        return Opened(secret, person)

    def sign_out(self, secret: str, address: str | None = None) -> bool:
        with session_scope(self.engine) as session:
            person_id = self.sessions.end(session, secret)
            if person_id is None:
                return False
            audit.record(
                session, Action.signed_out, person_id=person_id, actor=person_id, address=address
            )
            return True

    def _person(self, typed: str) -> Person | None:
        try:
            email = normalise_email(typed)
        except InvalidInput:
            return None
        with Session(self.engine) as session:
            return by_email(session, email)

    def _failed(self, typed: str, address: str, person: Person | None, why: str) -> None:
        self.throttle.failed(typed, address)
        audit.record_alone(
            self.engine,
            Action.sign_in_failed,
            person_id=None if person is None else person.id,
            email=typed,
            address=address,
            # The audit is the operator's: it may say why, the person is never told.
            detail=why if person is not None else "no such person",
        )


def _second_factor(session: Session, person: Person, code: str, claim: bool) -> CodeCheck:
    if person.totp_secret:
        return take_code(session, person, code, claim)
    # An official without a factor cannot sign in (accepting an invitation requires one).
    return CodeCheck.wrong if person.kind == PersonKind.official else CodeCheck.accepted
