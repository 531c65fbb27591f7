"""docker-compose.yml as Compose itself reads it (`docker-compose config`): one image built
once, every service scalable and health-checked, a stop grace longer than the services'
own shutdown, named volumes for what must survive. `up` is not tried (no registry here)."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.support import ROOT

APP_SERVICES = ("intake", "review", "notify")
SECRETS = [
    "REE_TOKEN_SECRET",
    "REE_AUDIT_KEY",
    "REE_AUDIT_SIGNING_KEY",
    "REE_WEBHOOK_SECRETS_KEY",
] + [f"REE_REDIS_{user}_PASSWORD" for user in ("ADMIN", "INTAKE", "REVIEW", "NOTIFY", "OPERATOR")]
# A service's shutdown: uvicorn's graceful timeout (20 s, shared/serve.py) then the runtime's
# wait for its tasks (10 s, shared/runtime.py ServiceRuntime.stop).
SERVICE_SHUTDOWN_SECONDS = 20 + 10


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    pytest.skip("neither docker-compose nor docker compose is installed (.ci/run installs it)")


def config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REE_")}
    return subprocess.run(
        [*compose_command(), "-f", str(ROOT / "docker-compose.yml"), "config"],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    done = config({name: f"secret-of-{name.lower()}" for name in SECRETS})
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = yaml.safe_load(done.stdout)
    return parsed


def seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


def test_one_image_is_built_once_and_every_service_runs_it(compose: dict[str, Any]) -> None:
    services = compose["services"]
    built = [name for name, s in services.items() if "build" in s]
    assert len(built) == 1, built
    image = services[built[0]]["image"]
    for name in APP_SERVICES:
        assert services[name]["image"] == image
        assert services[name]["pull_policy"] == "never", "the image is ours, never pulled"


def test_every_service_scales_health_checks_readyz_and_outlasts_its_shutdown(
    compose: dict[str, Any],
) -> None:
    for name in APP_SERVICES:
        service = compose["services"][name]
        for port in service.get("ports", []):
            fixed = port.get("published") if isinstance(port, dict) else str(port).count(":")
            assert not fixed, f"{name}: a fixed host port stops --scale {name}=2"
        assert "/readyz" in " ".join(service["healthcheck"]["test"]), name
        grace = seconds(service["stop_grace_period"])
        assert grace > SERVICE_SHUTDOWN_SECONDS, f"{name} is killed mid-shutdown"


def test_data_lives_in_named_volumes_and_redis_keeps_an_aof(compose: dict[str, Any]) -> None:
    services, volumes = compose["services"], set(compose["volumes"])

    def mounted(name: str, target: str) -> str:
        for volume in services[name]["volumes"]:
            source, _, rest = (
                str(volume).partition(":")
                if isinstance(volume, str)
                else (
                    volume["source"],
                    ":",
                    volume["target"],
                )
            )
            if rest.split(":")[0] == target:
                return source
        raise AssertionError(f"{name} has nothing mounted at {target}")

    assert mounted("postgres", "/var/lib/postgresql/data") in volumes
    assert mounted("redis", "/data") in volumes
    assert mounted("intake", "/data") in volumes, "the document store"
    assert mounted("review", "/data") == mounted("intake", "/data"), "review reads the same store"
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "--aclfile" in command, "the Redis users stay"


def test_a_missing_secret_stops_compose() -> None:
    given = {name: "x" * 32 for name in SECRETS if name != "REE_AUDIT_KEY"}
    done = config(given)
    assert done.returncode != 0
    assert "REE_AUDIT_KEY" in done.stderr
