"""The fixtures the portal's integration tests share (tests/integration/test_portal_*.py):
the credential directory, a company, and its staff, each module's own (module scope).

A file imports the fixture `directory` as it is (under another name, `directory_fixture`,
so that the tests' `directory` arguments do not shadow an import) and makes its company and
staff with the factories, whose arguments are what differs between files (the company's
name and how it is made, a person's name and role); the import of `directory_fixture`,
used by name only, carries `# noqa: F401`:

    from tests.portal_fixtures import company_fixture, directory_fixture, staff_fixture

    company = company_fixture("Delta Drives AB")
    staff = staff_fixture("Dana Delta")

Not a conftest: the files stay where docs and other tests name them, beside tests that
want none of these, and a non-root conftest may not name a plugin module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.directory import Directory, open_directory
from tests.integration.conftest import new_company
from tests.people import enrol_staff, settings_of
from tests.support import Infra

Person = dict[str, Any]


@pytest.fixture(scope="module", name="directory")
def directory_fixture(infra: Infra) -> Iterator[Directory]:
    """The deployment's credential directory, open for the module's tests."""
    opened = open_directory(settings_of(infra))
    yield opened
    opened.engine.dispose()


def company_fixture(
    name: str, create: Callable[[Infra, str], Person] = new_company
) -> Callable[..., Person]:
    """A fixture: the module's company `name` and its API key (`create` makes it: by
    default the operator's command, as an operator does)."""

    @pytest.fixture(scope="module")
    def company(infra: Infra) -> Person:
        return create(infra, name)

    return company


def staff_fixture(name: str, role: str = "admin") -> Callable[..., Person]:
    """A fixture: a staff member `name` of the module's company (`role`: admin or member)
    who accepted their invitation, with a password to sign in with."""

    @pytest.fixture(scope="module")
    def staff(directory: Directory, company: Person) -> Person:
        return enrol_staff(directory, company["id"], name, role=role)

    return staff
