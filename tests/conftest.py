"""Finds real Redis and a real database for the tests: environment, containers, or embedded.

Order (ARCHITECTURE.md, tests): REDIS_URL / DATABASE_URL; else testcontainers where a Docker
engine answers; else a redis-server started here on a free port and SQLite files. Every test
session gets its own schema and stream prefix, so runs never see each other's data.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Infra, reuse_one_tls_context, start_redis_server

reuse_one_tls_context()


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    cleanups: list[object] = []
    redis_url = os.environ.get("REDIS_URL")
    database_url = os.environ.get("DATABASE_URL")
    docker_ok = (redis_url is None or database_url is None) and _docker_answers()
    if redis_url is None and docker_ok:
        from testcontainers.redis import RedisContainer

        container = RedisContainer("redis:7-alpine").start()
        cleanups.append(container)
        redis_url = (
            f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"
        )
    if redis_url is None:
        proc, port = start_redis_server(tmp_path_factory.mktemp("redis"))
        cleanups.append(proc)
        redis_url = f"redis://127.0.0.1:{port}/0"
    if database_url is None and docker_ok:
        from testcontainers.postgres import PostgresContainer

        pg = PostgresContainer("postgres:15-alpine", driver=None).start()
        cleanups.append(pg)
        database_url = pg.get_connection_url()
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    infra = Infra(
        redis_url=redis_url,
        database_url=database_url,
        prefix=prefix,
        data_dir=Path(tmp_path_factory.mktemp("data")),
    )
    yield infra
    infra.drop_schemas()
    for item in reversed(cleanups):
        if isinstance(item, subprocess.Popen):
            item.terminate()
            item.wait(timeout=10)
        else:
            item.stop()  # type: ignore[attr-defined]
