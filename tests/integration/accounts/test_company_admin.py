"""A company's keys and colleagues against the real directory (shared/accounts/company.py):
the names, revocation, the audit lines, the last admin (also when two demote themselves at
once), and the operator's `reechannel company key` commands."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from shared.accounts import audit
from shared.accounts.company import OPERATOR, Actor
from shared.accounts.errors import AccountError, Conflict, NotAllowed, NotFound
from shared.accounts.invitations import Answer
from shared.db import utcnow
from shared.directory import Directory, InvalidCredential
from tests.integration.accounts.support import PASSWORD, Kit, unique_email
from tests.integration.accounts.test_people_cli import reechannel
from tests.integration.conftest import new_company
from tests.support import Infra, operator


def staff(k: Kit, company_id: str, role: str = "admin", by: str = "operator:cli") -> Actor:
    """A person of the company's staff, invited and enrolled (no second factor)."""
    link = k.accounts.invitations.invite_staff(company_id, unique_email("sam"), "Sam", role, by)
    person = k.accounts.invitations.accept(link.token, Answer(PASSWORD))
    return Actor(person.id, company_id, role)


@pytest.fixture
def company(infra: Infra) -> dict[str, Any]:
    return new_company(infra, "Gamma Rare Earths GmbH")


def test_an_admin_creates_a_named_key_that_works_at_once_and_revokes_it(
    k: Kit, directory: Directory, company: dict[str, Any]
) -> None:
    since = utcnow()
    admin = staff(k, company["id"])
    key, secret = k.accounts.company.create_key(admin, company["id"], "  ERP export ")
    assert key.name == "ERP export" and key.live
    assert directory.authenticate(secret).company_id == company["id"]
    listed = k.accounts.company.keys(admin, company["id"])
    assert [x.name for x in listed] == ["ERP export", None]  # newest first; the first key
    assert all(secret not in str(x.as_dict()) for x in listed)
    with pytest.raises(Conflict):
        k.accounts.company.create_key(admin, company["id"], "erp EXPORT")
    k.accounts.company.revoke_key(admin, key.id)
    with pytest.raises(InvalidCredential):
        directory.authenticate(secret)
    with pytest.raises(Conflict):
        k.accounts.company.revoke_key(admin, key.id)
    # Its name is free again once revoked; the revoked key is listed only when asked.
    k.accounts.company.create_key(admin, company["id"], "ERP export")
    assert len(k.accounts.company.keys(admin, company["id"], revoked=True)) == 3
    lines = [
        e
        for e in audit.events(directory.engine, since)
        if e.actor == admin.id and e.action in ("key_created", "key_revoked")
    ]
    assert [e.action for e in lines] == ["key_created", "key_revoked", "key_created"]
    assert f"company {company['id']} key {key.id} name 'ERP export'" == lines[1].detail


def test_a_member_is_refused_and_another_companys_key_is_not_found(
    k: Kit, infra: Infra, company: dict[str, Any]
) -> None:
    member = staff(k, company["id"], "member")
    for call in (
        lambda: k.accounts.company.keys(member, company["id"]),
        lambda: k.accounts.company.create_key(member, company["id"], "mine"),
        lambda: k.accounts.company.colleagues(member, company["id"]),
        lambda: k.accounts.company.invite(member, company["id"], unique_email(), "X", "member"),
    ):
        with pytest.raises(NotAllowed):
            call()
    other = new_company(infra, "Delta Magnets SA")
    theirs, _ = k.accounts.company.create_key(OPERATOR, other["id"], "theirs")
    admin = staff(k, company["id"])
    with pytest.raises(NotFound):
        k.accounts.company.revoke_key(admin, theirs.id)
    with pytest.raises(NotFound):
        k.accounts.company.keys(admin, other["id"])
    their_admin = staff(k, other["id"])
    with pytest.raises(NotFound):
        k.accounts.company.disable(admin, company["id"], their_admin.id)
    assert k.accounts.company.keys(OPERATOR, other["id"])[0].live


def test_colleagues_invited_promoted_disabled_and_enabled_by_an_admin(
    k: Kit, company: dict[str, Any]
) -> None:
    admin = staff(k, company["id"])
    link = k.accounts.company.invite(admin, company["id"], unique_email("lin"), "Lin", "member")
    names = {c.name: c.status for c in k.accounts.company.colleagues(admin, company["id"])}
    assert names == {"Sam": "active", "Lin": "invited"}
    lin = k.accounts.invitations.accept(link.token, Answer(PASSWORD))
    k.accounts.company.change_role(admin, company["id"], lin.id, "admin")
    k.accounts.company.disable(admin, company["id"], lin.id)
    listed = {c.id: (c.role, c.status) for c in k.accounts.company.colleagues(admin, company["id"])}
    assert listed[lin.id] == ("admin", "disabled")
    k.accounts.company.enable(admin, company["id"], lin.id)
    assert k.accounts.people.get(lin.id).disabled_at is None  # type: ignore[union-attr]


def test_the_last_admin_cannot_demote_or_disable_themselves(
    k: Kit, company: dict[str, Any]
) -> None:
    admin = staff(k, company["id"])
    for call in (
        lambda: k.accounts.company.change_role(admin, company["id"], admin.id, "member"),
        lambda: k.accounts.company.disable(admin, company["id"], admin.id),
    ):
        with pytest.raises(Conflict) as refused:
            call()
        assert "last admin" in str(refused.value)
    other = staff(k, company["id"])
    k.accounts.company.change_role(admin, company["id"], admin.id, "member")  # one remains
    with pytest.raises(Conflict):
        k.accounts.company.disable(other, company["id"], other.id)


def test_two_admins_demoting_themselves_at_once_leave_one_admin(
    k: Kit, company: dict[str, Any]
) -> None:
    if k.directory.engine.dialect.name != "postgresql":
        pytest.skip("the admins' rows are locked FOR UPDATE on PostgreSQL (SQLite: one writer)")
    one, two = staff(k, company["id"]), staff(k, company["id"])
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def demote(actor: Actor) -> None:
        start.wait()
        try:
            k.accounts.company.change_role(actor, company["id"], actor.id, "member")
            outcomes[actor.id] = "done"
        except AccountError as exc:
            outcomes[actor.id] = type(exc).__name__

    threads = [threading.Thread(target=demote, args=(a,)) for a in (one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["Conflict", "done"]
    roles = [c.role for c in k.accounts.company.colleagues(OPERATOR, company["id"])]
    assert roles.count("admin") == 1


def test_the_operators_key_commands(infra: Infra, directory: Directory) -> None:
    made_at = utcnow()
    made = new_company(infra, "Epsilon Alloys BV")
    key = operator(infra, "company", "key", "create", made["id"], "--name", "warehouse")
    assert key["api_key"].startswith("ree_ak_") and key["name"] == "warehouse"
    assert directory.authenticate(key["api_key"]).company_id == made["id"]
    listed = operator(infra, "company", "key", "list", made["id"])["keys"]
    assert [x["name"] for x in listed] == ["warehouse", None]
    assert "api_key" not in listed[0]
    plain = reechannel(infra, "company", "key", "list", made["id"])
    assert plain.returncode == 0 and "warehouse" in plain.stdout and "ree_ak_" not in plain.stdout
    again = reechannel(infra, "company", "key", "create", made["id"], "--name", "Warehouse")
    assert again.returncode == 2 and "another key in use has this name" in again.stderr
    empty = reechannel(infra, "company", "key", "create", made["id"], "--name", " ")
    assert empty.returncode == 2 and "1 to 100 characters" in empty.stderr
    unknown = reechannel(infra, "company", "key", "list", "no-such-company")
    assert unknown.returncode == 2 and "no company" in unknown.stderr
    revoked = operator(infra, "company", "key", "revoke", key["id"])
    assert revoked["revoked_at"] is not None
    with pytest.raises(InvalidCredential):
        directory.authenticate(key["api_key"])
    twice = reechannel(infra, "company", "key", "revoke", key["id"])
    assert twice.returncode == 2 and "revoked already" in twice.stderr
    nothing = reechannel(infra, "company", "key", "revoke", "no-such-key")
    assert nothing.returncode == 2 and "no API key" in nothing.stderr
    events = reechannel(infra, "people", "audit", "--json", "--since", made_at.isoformat())
    assert f"key {key['id']} name 'warehouse'" in events.stdout
