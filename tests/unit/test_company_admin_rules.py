"""The pure rules of a company's own administration (shared/accounts/company.py): who may
manage, a key's name, what may be revoked, whose colleague a person is, the last admin."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.accounts.company import (
    OPERATOR,
    Actor,
    ApiKey,
    check_colleague,
    check_keeps_an_admin,
    check_may_manage,
    check_revocable,
    key_name,
)
from shared.accounts.errors import Conflict, InvalidInput, NotAllowed, NotFound
from shared.accounts.models import Person

NOW = datetime(2026, 12, 1, tzinfo=UTC)
ADMIN = Actor("p-admin", "c-1", "admin")
MEMBER = Actor("p-member", "c-1", "member")


def staff(person_id: str, role: str = "admin", company: str = "c-1") -> Person:
    return Person(
        id=person_id, kind="staff", email=f"{person_id}@x.eu", name=person_id,
        company_id=company, role=role, password_hash="-",
    )  # fmt: skip


def test_an_admin_manages_their_company_an_operator_any_a_member_none() -> None:
    check_may_manage(ADMIN, "c-1")
    check_may_manage(OPERATOR, "c-2")
    with pytest.raises(NotAllowed) as refused:
        check_may_manage(MEMBER, "c-1")
    assert refused.value.status == 403
    with pytest.raises(NotFound) as other:
        check_may_manage(ADMIN, "c-2")  # another company's: as if there were none
    assert other.value.status == 404


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_key_name_has_1_to_100_characters(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        key_name(name, [])
    assert refused.value.field == "name" and refused.value.status == 422


def test_a_key_name_is_trimmed_and_unique_among_live_keys_whatever_the_case() -> None:
    assert key_name("  ERP   export ", [None, "billing"]) == "ERP export"
    assert key_name("x" * 100, []) == "x" * 100
    with pytest.raises(Conflict) as taken:
        key_name("Billing", [None, "billing"])
    assert taken.value.status == 409 and taken.value.field == "name"


def key(company: str = "c-1", revoked: datetime | None = None) -> ApiKey:
    return ApiKey("k-1", company, "erp", NOW, revoked)


def test_a_key_is_revoked_once_and_only_by_its_company() -> None:
    assert check_revocable(key(), "k-1", "c-1").id == "k-1"
    assert check_revocable(key(), "k-1", None).id == "k-1"  # an operator: any company's
    for found, company in ((None, "c-1"), (key("c-2"), "c-1")):
        with pytest.raises(NotFound):
            check_revocable(found, "k-1", company)
    with pytest.raises(Conflict) as twice:
        check_revocable(key(revoked=NOW), "k-1", "c-1")
    assert twice.value.status == 409


def test_a_colleague_is_staff_of_the_same_company() -> None:
    assert check_colleague(staff("p-2"), "p-2", "c-1").id == "p-2"
    official = staff("p-3")
    official.kind = "official"
    for person in (None, staff("p-2", company="c-2"), official):
        with pytest.raises(NotFound):
            check_colleague(person, "p-2", "c-1")


def test_the_last_admin_cannot_demote_or_disable_themselves() -> None:
    me = staff("p-admin")
    with pytest.raises(Conflict) as last:
        check_keeps_an_admin(["p-admin"], me, ADMIN)
    assert last.value.status == 409
    check_keeps_an_admin(["p-admin", "p-other"], me, ADMIN)  # another admin remains
    check_keeps_an_admin(["p-admin"], staff("p-member", "member"), ADMIN)  # not an admin
    check_keeps_an_admin(["p-admin"], me, OPERATOR)  # an operator may empty a company
