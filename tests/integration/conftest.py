"""Fixtures for tests that run the services as real processes."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support import Infra, ServiceProcess, create_officials, operator, running

VALID_APPLICATION: dict[str, Any] = {
    "mofcom_application_number": "MOFCOM-2026-004211",
    "licence_type": "three_month",
    "exporter": {"name": "Baotou Magnet Co.", "uscc": "91150200MA0N1X2Y3Z"},
    "consignee": {"name": "Bosch GmbH", "country": "DE"},
    "end_user": {"name": "Bosch GmbH", "country": "DE"},
    "end_use": {"category": "automotive", "description": "traction motors for EV platform X"},
    "goods": [
        {
            "element": "Dy",
            "form": "metal",
            "hs_code": "2805.30",
            "quantity_kg": 120.5,
            "value_eur": 51000,
        }
    ],
    # Three weeks ahead: a production stop date in the past is refused (finding F8).
    "urgency": {
        "stock_days": 12,
        "production_stop_date": (datetime.now(UTC).date() + timedelta(days=21)).isoformat(),
        "jobs_at_risk": 800,
    },
    "sme": False,
}


def application(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(VALID_APPLICATION)
    body.update(changes)
    return body


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
