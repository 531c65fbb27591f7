"""The rate limit is one count per credential for all replicas of a service (Redis)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.ratelimit import WINDOW_SECONDS
from tests.integration.notify_support import new_company
from tests.support import Infra, ServiceProcess

PER_MINUTE = 5


@pytest.fixture
def own(infra: Infra, tmp_path: Path) -> Iterator[Infra]:
    deployment = infra.isolated(tmp_path)
    yield deployment
    deployment.drop_schemas()


def _replicas(own: Infra, scope: str) -> list[ServiceProcess]:
    env = own.env(REE_RATE_LIMIT_PER_MINUTE=str(PER_MINUTE), REE_RATE_LIMIT_SCOPE=scope)
    replicas = [ServiceProcess("intake", env).start(wait_ready=False) for _ in range(2)]
    for replica in replicas:
        replica.wait_ready()
    return replicas


def _statuses(replicas: list[ServiceProcess], key: str, requests: int) -> list[int]:
    """`requests` GETs by one credential, alternating between the replicas, in one window."""
    # The count starts afresh each minute: begin early enough in one to finish in it.
    if time.time() % WINDOW_SECONDS > WINDOW_SECONDS - 15:
        time.sleep(WINDOW_SECONDS - time.time() % WINDOW_SECONDS + 0.1)
    statuses = []
    for i in range(requests):
        with replicas[i % 2].client(key) as client:
            statuses.append(client.get("/v1/applications", params={"limit": 1}).status_code)
    return statuses


def test_two_replicas_give_a_credential_the_limit_once(own: Infra) -> None:
    replicas = _replicas(own, "shared")
    try:
        company = new_company(own, "Shared Limits GmbH")
        other = new_company(own, "Other Limits SAS")
        statuses = _statuses(replicas, company["api_key"], PER_MINUTE + 1)
        assert statuses == [200] * PER_MINUTE + [429]
        with replicas[1].client(company["api_key"]) as client:
            limited = client.get("/v1/applications")
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= WINDOW_SECONDS
        # Another credential has its own count.
        with replicas[0].client(other["api_key"]) as client:
            assert client.get("/v1/applications").status_code == 200
    finally:
        for replica in replicas:
            replica.stop()


def test_counted_per_process_each_replica_gives_the_limit(own: Infra) -> None:
    replicas = _replicas(own, "process")
    try:
        company = new_company(own, "Process Limits BV")
        statuses = _statuses(replicas, company["api_key"], 2 * PER_MINUTE + 2)
        assert statuses == [200] * (2 * PER_MINUTE) + [429, 429]
    finally:
        for replica in replicas:
            replica.stop()
