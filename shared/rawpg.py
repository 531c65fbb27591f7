"""A few plain psycopg connections beside an engine, for the statements of the hottest routes.

SQLAlchemy's statement machinery costs several times the CPU of a small statement. The credential
lookup of every request and intake's writes use these connections instead: the same database,
parameters and search_path as the engine, statements sent by psycopg itself (prepared by the
server after a few uses).

No ping: a connection that went stale (the database restarted) fails on its first statement
with `psycopg.OperationalError`; callers retry on a fresh connection when nothing can have
been committed (`run`). The database being away is raised as SQLAlchemy's OperationalError,
which the services answer with 503, as with the engine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

T = TypeVar("T")

# Connections older than this are closed when they come back (as the engine's pool_recycle).
MAX_AGE_SECONDS = 1800.0


class RetrySafe(Exception):
    """Raised by work given to `run` when it failed before anything could be committed."""

    def __init__(self, cause: psycopg.OperationalError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class RawConnections:
    """Up to `size` psycopg connections with the engine's connection parameters (PostgreSQL)."""

    def __init__(self, engine: Engine, size: int = 10, autocommit: bool = False) -> None:
        self.engine = engine
        self.autocommit = autocommit
        self._idle: list[tuple[psycopg.Connection[Any], float]] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._params: dict[str, Any] | None = None

    def run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run `work` on a connection; once more on a new one if it raises RetrySafe.

        `work` raises RetrySafe for a connection error before its COMMIT was sent (a stale
        connection fails on its first statement); any other error is passed on, after the
        connection is rolled back, or dropped when it failed.
        """
        for fresh in (False, True):
            if not self._slots.acquire(timeout=30):
                raise OperationalError("checkout", None, TimeoutError("no free connection"))
            conn: psycopg.Connection[Any] | None = None
            born = time.monotonic()
            try:
                conn, born = self._checkout(fresh)
                result = work(conn)
            except RetrySafe as exc:
                self._drop(conn)
                if fresh:
                    raise OperationalError("statement", None, exc.cause) from exc.cause
                continue
            except psycopg.OperationalError as exc:
                self._drop(conn)
                raise OperationalError("statement", None, exc) from exc
            except BaseException:
                self._checkin(conn, born)
                raise
            else:
                self._checkin(conn, born)
                return result
            finally:
                self._slots.release()
        raise AssertionError("unreachable")

    def _checkout(self, fresh: bool) -> tuple[psycopg.Connection[Any], float]:
        if not fresh:
            with self._lock:
                if self._idle:
                    return self._idle.pop()
        try:
            conn = psycopg.Connection.connect(autocommit=self.autocommit, **self._connect_params())
        except psycopg.OperationalError as exc:
            raise OperationalError("connect", None, exc) from exc
        return conn, time.monotonic()

    def _checkin(self, conn: psycopg.Connection[Any] | None, born: float) -> None:
        if conn is None:
            return
        if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
            try:
                conn.rollback()
            except psycopg.Error:
                conn.close()
        if conn.closed or time.monotonic() - born > MAX_AGE_SECONDS:
            conn.close()
            return
        with self._lock:
            self._idle.append((conn, born))

    @staticmethod
    def _drop(conn: psycopg.Connection[Any] | None) -> None:
        if conn is not None:
            conn.close()

    def _connect_params(self) -> dict[str, Any]:
        # What the engine's connections use: the URL's (with the password, which libpq does not
        # report back) and the connect arguments (search_path, timeout) as libpq reports them.
        if self._params is None:
            _args, from_url = self.engine.dialect.create_connect_args(self.engine.url)
            raw = self.engine.raw_connection()
            try:
                reported = dict(raw.driver_connection.info.get_parameters())  # type: ignore[union-attr]
            finally:
                raw.close()
            self._params = {**reported, **{k: v for k, v in from_url.items() if k != "context"}}
        return self._params

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _born in idle:
            conn.close()
