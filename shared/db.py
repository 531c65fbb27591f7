"""Database engines, sessions and migrations, the same for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlmodel import Session, SQLModel, col, create_engine, select

from shared.config import CommonSettings

log = logging.getLogger(__name__)

M = TypeVar("M", bound=SQLModel)


def empty_list() -> list[Any]:
    """`default_factory` of a model's list field. Not `list` itself: pydantic reads a
    factory's signature each time it calls it, and a builtin's is parsed from its text
    signature (about 180 µs, against 7 µs for a function; a case's facts row has four)."""
    return []


def empty_dict() -> dict[Any, Any]:
    """`default_factory` of a model's dict field (see `empty_list`)."""
    return {}


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(settings: CommonSettings, component: str, pool_size: int = 10) -> Engine:
    """An engine bound to one component's own database (SQLite file) or schema (PostgreSQL)."""
    url = settings.database_url_for(component)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=True
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets the outbox relay read while a request writes.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    schema = settings.schema_for(component)
    engine = create_engine(
        url,
        # The schema names the connection in pg_stat_activity: an operator sees which
        # service (and which deployment, by its prefix) holds the server's connections.
        connect_args={
            "options": f"-csearch_path={schema}",
            "connect_timeout": 5,
            "application_name": schema,
        },
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
    )
    ping_when_idle(engine)
    return engine


# A pooled connection idle for longer than this is pinged before it is handed out.
IDLE_PING_SECONDS = 5.0


def ping_when_idle(engine: Engine, idle_seconds: float = IDLE_PING_SECONDS) -> None:
    """Hand out a pooled connection after a ping only if it has been idle a while.

    SQLAlchemy's `pool_pre_ping` pings on every checkout: one more round trip for each
    transaction, about ten per application on its way through the services. A connection
    in steady use is known to be alive; one idle for `idle_seconds` may have been closed by
    a database restart or a proxy unnoticed, and is replaced if its ping fails. A connection
    that breaks mid-use still fails that one unit of work (a 503, or an event retried), and
    SQLAlchemy then discards every connection of the pool older than the failure.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return  # new (just connected) or in steady use
        try:
            engine.dialect.do_ping(dbapi_conn)  # what `pool_pre_ping` runs
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError() from exc


def advisory_key(name: str) -> int:
    """A PostgreSQL advisory lock's key for a name (56 bits of its SHA-256: a positive bigint)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:7], "big")


# A table is vacuumed once it holds more dead rows than this many plus this share of its live
# rows, and analyzed once as many rows have changed since its last ANALYZE: autovacuum's rules
# (50 rows + 20 % dead, 50 + 10 % changed), checked every few seconds instead of every minute.
UPKEEP_BASE_ROWS = 500
UPKEEP_SCALE = 0.1
# The watched tables that need upkeep, and whether it is a VACUUM (many dead rows; it
# analyzes too) or an ANALYZE alone (many rows changed since the last one).
_NEEDING_UPKEEP = text(
    "SELECT relname, n_dead_tup > :base + :scale * greatest(n_live_tup, 0) AS dead"
    " FROM pg_stat_user_tables"
    " WHERE schemaname = current_schema() AND relname = ANY(:tables)"
    " AND greatest(n_dead_tup, n_mod_since_analyze) > :base + :scale * greatest(n_live_tup, 0)"
    " ORDER BY relname"
)
# For a query that must walk an index in its order whatever the statistics say: with sorting
# off for the rest of the transaction, the ordered index scan is the only plan left.
IN_INDEX_ORDER = text("SELECT set_config('enable_sort', 'off', true)")


def upkeep_tables(engine: Engine, tables: Sequence[str]) -> list[str]:
    """VACUUM those of these tables (in the engine's schema) that hold many dead rows, ANALYZE
    those that changed much since their last ANALYZE; returns what was done, as
    "VACUUM <table>" or "ANALYZE <table>" (SQLite: nothing).

    For tables whose rows change state fast (docs/architecture.md, "Tables that change
    fast"). Notify's deliveries gain 10,000 pending rows in seconds while the statistics
    still describe a nearly empty table, and its claim then read every pending row. Every
    outbox row is updated once published, leaving a dead row behind, and the relay's look
    for unpublished rows went through all of them: with autovacuum off, or behind, its cost
    grew with every event ever published. With autovacuum keeping up this finds nothing to
    do; one replica at a time does it (an advisory lock per schema), and a table that
    autovacuum is working on is skipped.
    """
    if is_sqlite(engine) or not tables:
        return []
    done: list[str] = []
    # VACUUM runs outside a transaction: autocommit, and a lock held by the session.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        key = advisory_key(f"upkeep:{schema}")
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            return []  # another replica is at it
        try:
            params = {"tables": list(tables), "base": UPKEEP_BASE_ROWS, "scale": UPKEEP_SCALE}
            for name, dead in conn.execute(_NEEDING_UPKEEP, params).all():
                # A name from the catalogue, quoted.
                if dead:
                    conn.execute(text(f'VACUUM (ANALYZE, SKIP_LOCKED) "{name}"'))
                    done.append(f"VACUUM {name}")
                else:
                    conn.execute(text(f'ANALYZE (SKIP_LOCKED) "{name}"'))
                    done.append(f"ANALYZE {name}")
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    return done


# What a snapshot read asks of its PostgreSQL connection.
SNAPSHOT = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}


@contextmanager
def snapshot_session(engine: Engine) -> Iterator[Session]:
    """A session for a read of several queries that must agree with one another: they all
    see the database as it was at the first (a view and its timeline, read while a change
    lands, never show the entry without its status).

    PostgreSQL: one REPEATABLE READ, READ ONLY transaction (its snapshot is taken at the
    first statement; read-only transactions never fail to serialise). SQLite: the driver
    starts no transaction for a SELECT, so each query would read its own snapshot; the
    session begins one itself, and WAL keeps its snapshot while a writer commits.
    """
    if is_sqlite(engine):
        with Session(engine, expire_on_commit=False) as session:
            session.connection().exec_driver_sql("BEGIN")
            yield session
        return
    with Session(engine, expire_on_commit=False) as session:
        # Set on the session's connection before its first statement: no engine is built
        # a read, and the pool resets the connection's level when it comes back.
        session.connection(execution_options=SNAPSHOT)
        yield session


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back when it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


class RowsByKey(Generic[M]):
    """One model's rows of a transaction by a key column, read many at once.

    A consumer's `prepare` hook loads the rows a read's handlers will look up, in one
    query; each handler's `get` then finds its row without a round trip (None: known to
    have none). The rows are held in `session.info`, strongly, because the session's
    identity map keeps unchanged objects only weakly. A key not loaded is read on its own.
    Lookups do not flush: a consumer writes a whole read's changes together at the commit.

    With `for_update` the rows are locked as they are read (PostgreSQL; SQLite serialises its
    writers anyway), so a request that changes one of them meanwhile waits for this
    transaction and then sees its result, instead of this transaction writing over it later.
    """

    def __init__(self, model: type[M], column: str, name: str, for_update: bool = False) -> None:
        self.model, self.column, self.name = model, column, name
        self.for_update = for_update

    def _select(self, condition: Any) -> Any:
        query = select(self.model).where(condition)
        return query.with_for_update() if self.for_update else query

    def _known(self, session: Session) -> dict[str, M | None]:
        known: dict[str, M | None] = session.info.setdefault(self.name, {})
        return known

    def load(self, session: Session, keys: Iterable[str]) -> None:
        known = self._known(session)
        wanted = sorted({k for k in keys if k not in known})
        if not wanted:
            return
        with session.no_autoflush:
            found = session.exec(
                self._select(col(getattr(self.model, self.column)).in_(wanted))
            ).all()
        known.update(dict.fromkeys(wanted))
        known.update((getattr(row, self.column), row) for row in found)

    def get(self, session: Session, key: str) -> M | None:
        known = self._known(session)
        if key in known:
            return known[key]
        with session.no_autoflush:
            return session.exec(self._select(getattr(self.model, self.column) == key)).first()

    def add(self, session: Session, row: M) -> None:
        """Stage a new row; `get` finds it before it is written."""
        session.add(row)
        self._known(session)[getattr(row, self.column)] = row


def ping(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def wait_for_database(engine: Engine, timeout: float | None = 60.0) -> None:
    """Block with backoff until the database answers, so a service never crashes on startup."""
    deadline = time.monotonic() + timeout if timeout is not None else float("inf")
    delay = 0.2
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return
        except OperationalError as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("database not answering (%s); retrying in %.1fs", exc.orig, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def migrate(
    engine: Engine, script_location: Path, schema: str | None = None, revision: str = "head"
) -> None:
    """Bring one component's tables to the newest migration (or to `revision`: a restore
    loads a backup at the revision it was taken at); safe with replicas starting at once."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    with engine.begin() as conn:
        if not is_sqlite(engine):
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_key(str(schema))})
            if schema:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                conn.execute(text(f'SET LOCAL search_path TO "{schema}"'))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def run_migrations_env(target_metadata: Any, tables: Iterable[str]) -> None:
    """Body of every component's alembic env.py: online migrations on the handed connection."""
    from alembic import context

    owned = set(tables)

    def include_object(obj: Any, name: str | None, type_: str, *_: Any) -> bool:
        if type_ == "table":
            return name in owned
        table = getattr(obj, "table", None)
        return table is None or table.name in owned

    connection = context.config.attributes.get("connection")
    if connection is None:
        # Used when a developer runs `alembic revision --autogenerate` by hand.
        url = context.config.get_main_option("sqlalchemy.url") or "sqlite:///autogen.db"
        connection = create_engine(url).connect()
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def drop_schema(engine: Engine, schema: str) -> None:
    """Tests only: remove a throwaway PostgreSQL schema."""
    if is_sqlite(engine):
        return
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
