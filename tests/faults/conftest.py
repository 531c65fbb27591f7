"""A whole system per test, on its own Redis server, so a test may kill or wipe any part."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import new_company
from tests.support import Infra, ServiceProcess, create_officials, start_redis_server


@dataclass
class System:
    infra: Infra
    redis_dir: Path
    redis_port: int
    redis_proc: subprocess.Popen[bytes]
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    company: dict[str, Any] = field(default_factory=dict)
    officials: dict[str, dict[str, Any]] = field(default_factory=dict)

    def start(self, name: str, **env: str) -> ServiceProcess:
        service = ServiceProcess(name, self.infra.env(**env)).start()
        self.services[name] = service
        return service

    def restart(self, name: str) -> ServiceProcess:
        old = self.services[name]
        service = ServiceProcess(name, old.env)
        service.port = old.port
        service.env = old.env
        service.start()
        self.services[name] = service
        return service

    def stop_redis(self, kill: bool = False) -> None:
        if kill:
            self.redis_proc.kill()
        else:
            self.redis_proc.terminate()
        self.redis_proc.wait(timeout=10)

    def start_redis(self, wipe: bool = False) -> None:
        if wipe:
            for item in self.redis_dir.iterdir():
                if item.is_dir():
                    for sub in item.iterdir():
                        sub.unlink()
                    item.rmdir()
                else:
                    item.unlink()
        self.redis_proc, _ = start_redis_server(self.redis_dir, port=self.redis_port, aof=True)


@pytest.fixture
def system(infra: Infra, tmp_path: Path) -> Iterator[System]:
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    proc, port = start_redis_server(redis_dir, aof=True)
    own = infra.isolated(tmp_path / "data", redis_url=f"redis://127.0.0.1:{port}/0")
    sys_ = System(own, redis_dir, port, proc)
    sys_.company = new_company(own, "Fault Test GmbH")
    sys_.officials = create_officials(own)
    yield sys_
    for service in sys_.services.values():
        service.kill()
    if sys_.redis_proc.poll() is None:
        sys_.redis_proc.terminate()
        sys_.redis_proc.wait(timeout=10)
    own.drop_schemas()
