"""One benchmark deployment: its servers, its prefix, its processes, and its cleanup.

A deployment is the three services (or some of them) as real processes on free loopback
ports, with their own PostgreSQL schemas and Redis stream names (REE_SCHEMA_PREFIX /
REE_STREAM_PREFIX = a fresh `bench<hex>_`) and their own data folder, so a run never sees
another run's or the test suite's data; `close()` drops all of it again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from reechannel.supervisor import redis_executable
from shared.config import CommonSettings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll `check` until it returns something truthy; bounded by `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # what is polled may not be up yet
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@dataclass
class Servers:
    """PostgreSQL and Redis for the run: the environment's, the local ones, or an embedded Redis."""

    database_url: str
    redis_url: str
    embedded_redis: subprocess.Popen[bytes] | None = None
    redis_dir: Path | None = None

    @classmethod
    def find(cls) -> Servers:
        database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
        if not database_url.startswith(("postgresql", "postgres:")):
            raise SystemExit("the benchmark needs PostgreSQL: set DATABASE_URL=postgresql://...")
        engine = create_engine(_sqlalchemy_url(database_url))
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            raise SystemExit(f"PostgreSQL at {database_url} does not answer: {exc}") from exc
        finally:
            engine.dispose()
        redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
        if _redis_answers(redis_url):
            return cls(database_url, redis_url)
        # No Redis server answers: start the embedded one, as `reechannel run` does.
        exe = redis_executable()
        if exe is None:
            raise SystemExit("no Redis answers and no redis-server is installed")
        folder = Path(tempfile.mkdtemp(prefix="ree-bench-redis-"))
        port = free_port()
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        wait_until(lambda: _redis_answers(url), 15, "embedded redis-server")
        return cls(database_url, url, proc, folder)

    def close(self) -> None:
        if self.embedded_redis is not None:
            self.embedded_redis.terminate()
            self.embedded_redis.wait(timeout=10)
        if self.redis_dir is not None:
            shutil.rmtree(self.redis_dir, ignore_errors=True)

    def versions(self) -> dict[str, str]:
        engine = create_engine(_sqlalchemy_url(self.database_url))
        with engine.connect() as conn:
            pg = str(conn.execute(text("SHOW server_version")).scalar())
        engine.dispose()
        info = redis.Redis.from_url(self.redis_url).info("server")
        return {"postgresql": pg, "redis": str(info.get("redis_version"))}


def _sqlalchemy_url(url: str) -> str:
    return CommonSettings(DATABASE_URL=url).database_url_for("x")


class Process:
    """A child process of the benchmark (a service, the baseline, the receiver), on its port."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.port = port
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def wait_ready(self, path: str = "/readyz", timeout: float = 90) -> Process:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {tail}")
            return httpx.get(self.url + path, timeout=2).status_code == 200

        try:
            wait_until(ready, timeout, f"{self.name} ready", interval=0.2)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from exc
        return self

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far (Linux /proc)."""
        return process_cpu_seconds(self.pid)

    def rss_mb(self) -> float:
        """Resident memory of the process now, in MB (Linux /proc)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Deployment:
    """The services of one scenario, isolated by prefix and data folder."""

    servers: Servers
    settings_env: dict[str, str] = field(default_factory=dict)
    prefix: str = field(default_factory=lambda: f"bench{uuid.uuid4().hex[:8]}_")
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ree-bench-")))
    processes: list[Process] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REE_")}
        env.update(
            DATABASE_URL=self.servers.database_url,
            REDIS_URL=self.servers.redis_url,
            REE_SCHEMA_PREFIX=self.prefix,
            REE_STREAM_PREFIX=self.prefix,
            REE_DATA_DIR=str(self.data_dir),
            REE_LOG_LEVEL="WARNING",
            # Load comes from a few credentials; the per-credential limit is not under test.
            REE_RATE_LIMIT_PER_MINUTE="100000000",
            # The local webhook receiver listens on loopback over plain HTTP (docs/notify.md).
            REE_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
            REE_WEBHOOK_ALLOW_HTTP="true",
            PYTHONPATH=str(ROOT),
        )
        env.update(self.settings_env)
        env.update(extra)
        return env

    def service(self, name: str, replica: int = 0, **extra: str) -> Process:
        port = free_port()
        env = self.env(**{f"{name.upper()}_PORT": str(port)}, **extra)
        log = self.data_dir / "logs" / f"{name}-{replica}.log"
        process = Process(
            f"{name}#{replica}", [sys.executable, "-m", f"services.{name}"], env, port, log
        )
        self.processes.append(process)
        return process.start()

    def child(self, name: str, module: str, args: list[str] | None = None, **extra: str) -> Process:
        port = free_port()
        env = self.env(BENCH_PORT=str(port), **extra)
        log = self.data_dir / "logs" / f"{name}.log"
        process = Process(name, [sys.executable, "-m", module, *(args or [])], env, port, log)
        self.processes.append(process)
        return process.start()

    def settings(self) -> CommonSettings:
        return CommonSettings(
            DATABASE_URL=self.servers.database_url,
            REE_SCHEMA_PREFIX=self.prefix,
            REE_STREAM_PREFIX=self.prefix,
            REE_DATA_DIR=str(self.data_dir),
        )

    def engine(self, component: str) -> Engine:
        """An engine on one component's schema, for measuring (never for driving the load)."""
        from shared.db import make_engine

        return make_engine(self.settings(), component, pool_size=2)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.servers.redis_url, decode_responses=True)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def close(self) -> None:
        """Stop every process and remove this deployment's schemas, stream keys and files."""
        self.stop_all()
        with contextlib.suppress(redis.RedisError):
            r = self.redis()
            for key in r.scan_iter(match=f"*{self.prefix}*", count=1000):
                r.delete(key)
        engine = create_engine(_sqlalchemy_url(self.servers.database_url))
        with engine.begin() as conn:
            rows = conn.execute(
                text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                {"p": self.prefix + "%"},
            ).all()
            for (name,) in rows:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        engine.dispose()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def run_loadgen(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run the load generator in its own process and return its JSON result."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed ({out.returncode}): {out.stderr[-3000:]}")
    return json.loads(out.stdout)


def cpu_probe_ms(rounds: int = 5) -> float:
    """How long this host takes now for a fixed piece of pure Python, in ms (lower is faster).

    The median of a few rounds of about 10 ms each. Taken while the benchmark drives no load, it
    tells the shared host's own speed at that moment: the same code measured at different
    times should be compared with this beside it.
    """
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        total = 0
        for i in range(200_000):
            total += i * i
        times.append(time.perf_counter() - started)
    return 1000 * sorted(times)[len(times) // 2]


_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process from /proc/<pid>/stat; 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def server_cpu_seconds(name: str) -> float:
    """CPU time of every process whose command is `name` (postgres, redis-server) so far.

    A PostgreSQL backend that exits during a step takes its time with it, so this is a
    lower bound; the services keep pooled connections, whose backends live on.
    """
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm == name:
                total += process_cpu_seconds(int(entry.name))
    return total
