"""REE_DB_POOL_SIZE bounds the PostgreSQL connections a service process holds: its schema's
pool and as many more at a peak, and at most that many (up to 5) to the credential directory.
Each connection names its schema in pg_stat_activity (`application_name`), which is how an
operator, and this test, sees who holds them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from tests.integration.conftest import new_company
from tests.support import Infra, ServiceProcess, started, wait_until

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgresql"),
    reason="connection pools are PostgreSQL's (SQLite opens files)",
)


@pytest.fixture(scope="module")
def infra(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    """A deployment of this module's own: the only connections named by its schemas are
    this test's service's."""
    own = infra.isolated(tmp_path_factory.mktemp("pool"))
    yield own
    own.drop_schemas()


def _held(infra: Infra) -> dict[str, int]:
    """Connections open now, by the schema that names them (this deployment's only)."""
    assert infra.database_url is not None
    with psycopg.connect(infra.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT application_name, count(*) FROM pg_stat_activity"
            " WHERE application_name LIKE %s GROUP BY application_name",
            (infra.prefix + "%",),
        ).fetchall()
    return {str(name): int(n) for name, n in rows}


def _burst(intake: ServiceProcess, company: dict[str, Any], at_once: int) -> None:
    """`at_once` reads at a time, four rounds of them: more than the pools hold."""
    with intake.client(company["api_key"]) as api:

        def read(_n: int) -> int:
            return api.get("/v1/applications", params={"limit": 5}).status_code

        with ThreadPoolExecutor(max_workers=at_once) as pool:
            answers = list(pool.map(read, range(at_once * 4)))
    assert answers == [200] * len(answers), "every read is answered, waiting for a connection"


def test_a_service_keeps_no_more_connections_than_its_pool_size(infra: Infra) -> None:
    """After a burst of reads wider than the pools, the service keeps at most two pools of 2
    (REE_DB_POOL_SIZE=2) to each schema: its engine and its writes to intake's, the
    directory's engine and its credential lookups to the directory's; the extra connections
    of the peak are closed. With the default of 10 it keeps up to 10 in each."""
    company = new_company(infra, "Pool Metals GmbH")
    with started("intake", infra.env(REE_DB_POOL_SIZE="2")) as intake:
        _burst(intake, company, at_once=24)
        own = {infra.prefix + "intake", infra.prefix + "directory"}

        def kept_within_the_pools() -> bool:
            held = _held(infra)
            return set(held) <= own and all(n <= 4 for n in held.values())

        wait_until(kept_within_the_pools, timeout=30, what="no more than 4 connections a schema")
