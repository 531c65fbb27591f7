"""Invitations, password resets, people and sessions on the real directory database
(PostgreSQL in CI, SQLite otherwise) and the services' own Redis users."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from sqlalchemy import func, update
from sqlmodel import Session, select

from shared.accounts.audit import Action, events
from shared.accounts.errors import Conflict, InvalidInput, LinkRefused, NotAllowed
from shared.accounts.invitations import Answer, LinkSettings
from shared.accounts.models import Invitation, Person
from shared.accounts.totp import new_secret
from shared.db import utcnow
from shared.directory import Directory, InvalidCredential, Official
from tests.integration.accounts.support import (
    PASSWORD,
    Kit,
    kit,
    next_code,
    official,
    unique_email,
    wrong_code,
)
from tests.support import Infra


def count(directory: Directory, model: type, **where: object) -> int:
    with Session(directory.engine) as session:
        query = select(func.count()).select_from(model)
        for column, value in where.items():
            query = query.where(getattr(model, column) == value)
        return int(session.exec(query).one())


def company_admin(k: Kit) -> tuple[str, Person]:
    company, _key = k.directory.create_company("Alpha Motors AG", "DE" + unique_email()[4:12])
    link = k.accounts.invitations.invite_staff(company.id, unique_email("ada"), "Ada Admin")
    return company.id, k.accounts.invitations.accept(link.token, Answer(PASSWORD))


# --- invitations ----------------------------------------------------------------------------


def test_an_invited_official_becomes_a_person_and_an_official_with_a_second_factor(
    k: Kit,
) -> None:
    email = unique_email()
    link = k.accounts.invitations.invite_official(
        f"  {email.upper()} ", "Eva Europa", "eu", "officer"
    )
    with Session(k.directory.engine) as session:
        stored = session.get(Invitation, link.invitation.id)
        assert stored is not None and link.token not in stored.token_hash  # only a hash
    assert link.url(LinkSettings()).endswith(f":8002/invitation?token={link.token}")
    secret = new_secret()
    person = k.accounts.invitations.accept(link.token, Answer(PASSWORD, secret, next_code(secret)))
    assert (person.email, person.side, person.role, person.kind) == (
        email,
        "EU",
        "officer",
        "official",
    )
    assert person.password_hash.startswith("$argon2id$") and PASSWORD not in person.password_hash
    record = k.directory.official(person.id)
    assert record is not None and (record.side, record.role) == ("EU", "officer")
    actions = [e.action for e in events(k.directory.engine) if e.email == email]
    assert actions == [Action.invited, Action.invitation_accepted]


def test_an_invitation_works_once(k: Kit) -> None:
    link = k.accounts.invitations.invite_official(unique_email(), "Eva", "EU", "officer")
    secret = new_secret()
    k.accounts.invitations.accept(link.token, Answer(PASSWORD, secret, next_code(secret)))
    with pytest.raises(LinkRefused, match="used already"):
        k.accounts.invitations.accept(link.token, Answer(PASSWORD + "!", secret, "000000"))
    with pytest.raises(LinkRefused, match="not valid"):
        k.accounts.invitations.accept(link.token + "x", Answer(PASSWORD, secret, "000000"))


def test_an_expired_invitation_is_refused_and_creates_nothing(k: Kit) -> None:
    email = unique_email()
    link = k.accounts.invitations.invite_official(email, "Eva", "EU", "officer")
    table = Invitation.__table__  # type: ignore[attr-defined]
    with k.directory.engine.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.id == link.invitation.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    secret = new_secret()
    with pytest.raises(LinkRefused, match="expired"):
        k.accounts.invitations.accept(link.token, Answer(PASSWORD, secret, "000000"))
    assert count(k.directory, Person, email=email) == 0


@pytest.mark.parametrize(
    ("password", "totp", "code", "refusal"),
    [
        ("short pass", True, "right", "at least 12"),
        ("passwordpassword", True, "right", "most common"),
        (PASSWORD, False, None, "second factor"),
        (PASSWORD, True, "wrong", "code does not match"),
    ],
)
def test_a_refused_acceptance_leaves_nothing_behind_and_the_link_open(
    k: Kit, password: str, totp: bool, code: str | None, refusal: str
) -> None:
    email = unique_email()
    link = k.accounts.invitations.invite_official(email, "Eva", "EU", "officer")
    secret = new_secret() if totp else None
    typed = code
    if secret is not None:
        typed = next_code(secret) if code == "right" else wrong_code(secret)
    with pytest.raises(InvalidInput, match=refusal):
        k.accounts.invitations.accept(link.token, Answer(password, secret, typed or ""))
    assert count(k.directory, Person, email=email) == 0
    with Session(k.directory.engine) as session:
        assert session.exec(select(Official).where(Official.name == email)).first() is None
        stored = session.get(Invitation, link.invitation.id)
        assert stored is not None and stored.used_at is None
    # The same link still works once the person gets it right.
    secret = new_secret()
    assert k.accounts.invitations.accept(link.token, Answer(PASSWORD, secret, next_code(secret)))


def test_an_e_mail_is_one_persons(k: Kit) -> None:
    email, _person_id, _secret = official(k)
    with pytest.raises(Conflict):
        k.accounts.invitations.invite_official(email.upper(), "Eva Again", "CN", "officer")
    with pytest.raises(InvalidInput, match="e-mail"):
        k.accounts.invitations.invite_official("not-an-address", "Eva", "EU", "officer")


def test_a_company_admin_invites_colleagues_and_staff_may_go_without_a_second_factor(
    k: Kit,
) -> None:
    company_id, admin = company_admin(k)
    assert (admin.kind, admin.role, admin.company_id, admin.totp_secret) == (
        "staff",
        "admin",
        company_id,
        None,
    )
    link = k.accounts.invitations.invite_staff(
        company_id, unique_email("max"), "Max Member", "member", by=admin.id
    )
    member = k.accounts.invitations.accept(link.token, Answer(PASSWORD))
    assert member.role == "member"
    # A member invites no one; nor does an admin of another company.
    with pytest.raises(NotAllowed):
        k.accounts.invitations.invite_staff(company_id, unique_email(), "X", "member", by=member.id)
    other_company, _other = company_admin(k)
    with pytest.raises(NotAllowed):
        k.accounts.invitations.invite_staff(other_company, unique_email(), "X", by=admin.id)


def test_an_invitation_by_an_admin_disabled_since_is_refused(k: Kit) -> None:
    company_id, admin = company_admin(k)
    email = unique_email("late")
    link = k.accounts.invitations.invite_staff(company_id, email, "Late", "member", by=admin.id)
    k.accounts.people.disable(admin.id, by="operator:test")
    with pytest.raises(NotAllowed, match="disabled"):
        k.accounts.invitations.accept(link.token, Answer(PASSWORD))
    with pytest.raises(NotAllowed, match="disabled"):
        k.accounts.invitations.invite_staff(company_id, unique_email(), "X", "member", by=admin.id)
    assert count(k.directory, Person, email=email) == 0


# --- password reset -------------------------------------------------------------------------


def test_a_reset_link_sets_a_new_password_once_needs_the_code_and_ends_sessions(k: Kit) -> None:
    email, person_id, secret = official(k)
    opened = k.accounts.sign_in.sign_in(email, PASSWORD, next_code(secret), "10.0.0.1")
    assert k.accounts.invitations.request_reset("nobody." + email) is None
    link = k.accounts.invitations.request_reset(email)
    assert link is not None and link.url(LinkSettings()).endswith(f"/reset?token={link.token}")
    with pytest.raises(InvalidInput, match="code"):
        k.accounts.invitations.reset(link.token, "a new long passphrase", wrong_code(secret))
    k.accounts.invitations.reset(link.token, "a new long passphrase", next_code(secret))
    assert k.accounts.sessions.lookup(opened.secret) is None
    with pytest.raises(LinkRefused, match="used already"):
        k.accounts.invitations.reset(link.token, "another long passphrase", "000000")
    assert (
        k.accounts.sign_in.sign_in(
            email, "a new long passphrase", next_code(secret), "10.0.0.1"
        ).person.id
        == person_id
    )


def test_an_invitation_link_is_no_reset_link(k: Kit) -> None:
    link = k.accounts.invitations.invite_official(unique_email(), "Eva", "EU", "officer")
    with pytest.raises(LinkRefused, match="not valid"):
        k.accounts.invitations.reset(link.token, "a new long passphrase")


# --- sessions -------------------------------------------------------------------------------


def test_a_session_expires_when_idle_and_after_its_absolute_lifetime(
    directory: Directory, service_redis: dict[str, redis.Redis], infra: Infra
) -> None:
    short = kit(
        directory,
        service_redis["review"],
        infra,
        REE_SESSION_IDLE_MINUTES=5,
        REE_SESSION_MAX_HOURS=1,
    )
    email, person_id, secret = official(short)
    opened = short.accounts.sign_in.sign_in(email, PASSWORD, next_code(secret), "10.0.0.2")
    sessions = short.accounts.sessions
    start = utcnow()
    found = sessions.lookup(opened.secret, start)
    assert found is not None and (found.person_id, found.side, found.role) == (
        person_id,
        "EU",
        "officer",
    )
    assert sessions.lookup(opened.secret, start + timedelta(minutes=6)) is None  # idle
    # Used every 4 minutes it stays open, until an hour after the sign-in.
    for minutes in range(4, 60, 4):
        assert sessions.lookup(opened.secret, start + timedelta(minutes=minutes)) is not None
    assert sessions.lookup(opened.secret, start + timedelta(minutes=61)) is None
    assert sessions.lookup("ree_ss_" + "x" * 43) is None and sessions.lookup(None) is None


def test_signing_out_disabling_and_revoking_end_sessions(k: Kit) -> None:
    email, person_id, secret = official(k)

    def signed_in() -> str:
        return k.accounts.sign_in.sign_in(email, PASSWORD, next_code(secret), "10.0.0.3").secret

    first, second = signed_in(), signed_in()
    assert k.accounts.sign_in.sign_out(first)
    assert k.accounts.sessions.lookup(first) is None
    assert k.accounts.sessions.lookup(second) is not None  # the other session goes on
    assert not k.accounts.sign_in.sign_out(first)  # once
    # `reechannel credential revoke <official id>`: tokens and sessions alike.
    k.directory.revoke(person_id)
    assert k.accounts.sessions.lookup(second) is None
    third = signed_in()  # revoking ends what was open; a new sign-in is a new session
    assert k.accounts.sessions.lookup(third) is not None
    assert k.accounts.people.disable(person_id, by="operator:test") == 1
    assert k.accounts.sessions.lookup(third) is None
    actions = [e.action for e in events(k.directory.engine) if e.person_id == person_id]
    assert actions.count(Action.signed_in) == 3
    assert Action.signed_out in actions and actions[-1] == Action.disabled


def test_a_role_change_ends_sessions_and_moves_the_officials_record(k: Kit) -> None:
    email, person_id, secret = official(k)
    opened = k.accounts.sign_in.sign_in(email, PASSWORD, next_code(secret), "10.0.0.4")
    k.accounts.people.change_role(person_id, "supervisor", by="operator:test")
    assert k.accounts.sessions.lookup(opened.secret) is None
    record = k.directory.official(person_id)
    assert record is not None and record.role == "supervisor"
    with pytest.raises(InvalidInput):
        k.accounts.people.change_role(person_id, "admin", by="operator:test")
    again = k.accounts.sign_in.sign_in(email, PASSWORD, next_code(secret), "10.0.0.4")
    found = k.accounts.sessions.lookup(again.secret)
    assert found is not None and found.role == "supervisor"
    changed = [e for e in events(k.directory.engine) if e.person_id == person_id][-2]
    assert (changed.action, changed.detail) == (Action.role_changed, "officer -> supervisor")


def test_a_session_secret_is_no_bearer_credential(k: Kit) -> None:
    email, _person_id, secret = official(k)
    opened = k.accounts.sign_in.sign_in(email, PASSWORD, next_code(secret), "10.0.0.5")
    with pytest.raises(InvalidCredential):
        k.directory.authenticate(opened.secret)
