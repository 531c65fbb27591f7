"""Fixtures for tests that run the services as real processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import (
    Infra,
    ServiceProcess,
    create_officials,
    operator,
    running,
    sample_application,
)

VALID_APPLICATION: dict[str, Any] = sample_application()


def application(**changes: Any) -> dict[str, Any]:
    return sample_application(**changes)


def new_company(infra: Infra, name: str = "Company") -> dict[str, Any]:
    eori = "DE" + uuid.uuid4().hex[:12].upper()
    return operator(infra, "company", "create", "--name", name, "--eori", eori)


@pytest.fixture(scope="session")
def intake(infra: Infra) -> Iterator[ServiceProcess]:
    yield from running("intake", infra)


@pytest.fixture(scope="session")
def company_a(infra: Infra) -> dict[str, Any]:
    return new_company(infra, "Alpha Motors AG")


@pytest.fixture(scope="session")
def company_b(infra: Infra) -> dict[str, Any]:
    return new_company(infra, "Beta Wind SE")


@pytest.fixture(scope="session")
def review(infra: Infra, intake: ServiceProcess) -> Iterator[ServiceProcess]:
    yield from running("review", infra)


@pytest.fixture(scope="session")
def officials(infra: Infra) -> dict[str, dict[str, Any]]:
    return create_officials(infra)
