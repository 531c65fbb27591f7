"""`reechannel backup DIR` and `reechannel restore DIR`: every component's database, the
document store, a manifest and SHA-256 checksums (docs/operations.md).

PostgreSQL is copied table by table through SQLAlchemy, not with pg_dump/psql, because:
- a restore goes into schemas of another name (`REE_SCHEMA_PREFIX`: a second deployment on
  the same server, the tests' fresh prefixes), and pg_dump's output names its schemas;
- pg_dump refuses a server newer than itself, and the image need not carry a matching client;
- all schemas are read in one REPEATABLE READ transaction: one snapshot of the whole system,
  so no service's backup holds an event another's lacks.
The restore creates each schema with the component's own migrations at the revision the
backup was taken at, loads the rows, then migrates to the code's head. SQLite files are
copied with SQLite's online backup API, which is consistent while the services write.

Redis is not backed up: the databases are the source of truth. After a restore into an empty
Redis each outbox publishes again the events of its replay window and the consumers skip
those they had applied (shared/outbox.py, shared/consumer.py).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import multiprocessing
import platform
import shutil
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from sqlalchemy.engine import Connection, Engine

import services
from shared.config import CommonSettings
from shared.db import drop_schema, make_engine, migrate
from shared.directory import DIRECTORY
from shared.directory import MIGRATIONS as DIRECTORY_MIGRATIONS
from shared.documents import INCOMING_PREFIX

MANIFEST = "manifest.json"
CHECKSUMS = "SHA256SUMS"
FORMAT = 1
DOCUMENTS = "documents"
# Made by review in development when REE_AUDIT_SIGNING_KEY is unset; production keeps the
# key in the environment, never in the data folder, so a backup then holds no key.
KEY_FILES = ("audit-signing-key",)
_BATCH = 1000


class BackupError(Exception):
    """A backup or restore that must not go on; the message says why."""


def components() -> dict[str, Path]:
    """Each component's migrations: the credential directory and every service present."""
    found = {DIRECTORY: DIRECTORY_MIGRATIONS}
    for name in ("intake", "review", "notify"):
        location = Path(services.__file__).parent / name / "migrations"
        if location.is_dir():
            found[name] = location
    return found


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _encode(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


def _decoder(column: sa.Column[Any]) -> Any:
    kind = column.type
    if isinstance(kind, sa.DateTime):
        return lambda v: None if v is None else datetime.fromisoformat(v)
    if isinstance(kind, sa.Date):
        return lambda v: None if v is None else date.fromisoformat(v)
    if isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):
        return lambda v: None if v is None else Decimal(v)
    if isinstance(kind, sa.LargeBinary):
        return lambda v: None if v is None else base64.b64decode(v)
    return None


def _tables(conn: Connection, schema: str | None) -> list[sa.Table]:
    meta = sa.MetaData()
    meta.reflect(bind=conn, schema=schema)
    return [t for t in meta.sorted_tables if t.name != "alembic_version"]


def _revisions(conn: Connection, schema: str | None) -> list[str]:
    version = sa.table("alembic_version", sa.column("version_num"), schema=schema)
    return sorted(conn.execute(sa.select(version.c.version_num)).scalars())


# --- backup ---------------------------------------------------------------------------


def _dump_postgres(settings: CommonSettings, out: Path) -> dict[str, Any]:
    engine = make_engine(settings, DIRECTORY)
    done: dict[str, Any] = {}
    try:
        with engine.connect() as conn:
            # One snapshot of every schema: the components agree with each other.
            conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
            for component in components():
                schema = settings.schema_for(component)
                if not _schema_exists(conn, schema):
                    continue
                counts: dict[str, int] = {}
                folder = out / "database" / component
                folder.mkdir(parents=True)
                for table in _tables(conn, schema):
                    counts[table.name] = _dump_table(conn, table, folder / f"{table.name}.jsonl.gz")
                done[component] = {"revisions": _revisions(conn, schema), "tables": counts}
            server = conn.execute(sa.text("SELECT current_setting('server_version')")).scalar_one()
            conn.rollback()
    finally:
        engine.dispose()
    return {"kind": "postgresql", "server_version": server, "components": done}


def _schema_exists(conn: Connection, schema: str) -> bool:
    query = sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :s")
    return conn.execute(query, {"s": schema}).first() is not None


def _dump_table(conn: Connection, table: sa.Table, path: Path) -> int:
    rows = 0
    order = list(table.primary_key.columns) or list(table.columns)
    # Streamed from a server-side cursor: a table never has to fit in memory.
    query = sa.select(table).order_by(*order)
    result = conn.execute(query.execution_options(stream_results=True, yield_per=_BATCH))
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for row in result.mappings():
            f.write(json.dumps({k: _encode(v) for k, v in row.items()}) + "\n")
            rows += 1
    return rows


def _dump_sqlite(settings: CommonSettings, out: Path) -> dict[str, Any]:
    done: dict[str, Any] = {}
    folder = out / "database"
    folder.mkdir()
    for component in components():
        source = settings.data_dir / f"{component}.db"
        if not source.exists():
            continue
        target = folder / f"{component}.db"
        _sqlite_copy(source, target)
        with sqlite3.connect(target) as db:
            names = [
                r[0]
                for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if r[0] != "alembic_version" and not r[0].startswith("sqlite_")
            ]
            counts = {
                n: int(db.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]) for n in names
            }
            revisions = sorted(r[0] for r in db.execute("SELECT version_num FROM alembic_version"))
        done[component] = {"revisions": revisions, "tables": counts}
    return {"kind": "sqlite", "server_version": sqlite3.sqlite_version, "components": done}


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while the services write (WAL included)."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        # One self-contained file (the source's WAL mode would come along, with -wal and -shm
        # files beside it that change when the copy is opened).
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def _copy_files(settings: CommonSettings, out: Path) -> list[str]:
    copied = []
    # The document store's folder (REE_DOCUMENT_DIR, wherever it is) is `documents/` here.
    documents = settings.document_folder()
    if documents.is_dir():
        # Not an upload still being written (shared/documents.py renames it when whole).
        shutil.copytree(
            documents, out / DOCUMENTS, ignore=shutil.ignore_patterns(f"{INCOMING_PREFIX}*")
        )
        copied.append(DOCUMENTS)
    for name in KEY_FILES:
        if (settings.data_dir / name).is_file():
            (out / "keys").mkdir(exist_ok=True)
            shutil.copy2(settings.data_dir / name, out / "keys" / name)
            copied.append(f"keys/{name}")
    return copied


def _files_under(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name not in (MANIFEST, CHECKSUMS):
            yield path


def backup(settings: CommonSettings, out: Path) -> dict[str, Any]:
    """Write a backup into `out` (which must be empty or absent); returns its manifest."""
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: a backup goes into a folder of its own")
    out.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC).isoformat()
    if settings.database_url:
        database = _dump_postgres(settings, out)
    else:
        database = _dump_sqlite(settings, out)
    copied = _copy_files(settings, out)
    files = {str(p.relative_to(out)): sha256_of(p) for p in _files_under(out)}
    manifest = {
        "format": FORMAT,
        "created_at": created,
        "versions": {
            "reechannel": metadata.version("reechannel"),
            "python": platform.python_version(),
            "sqlalchemy": sa.__version__,
            "database": database["server_version"],
        },
        "database": {"kind": database["kind"], "components": database["components"]},
        "copied": copied,
        "documents": sum(1 for f in files if f.startswith(DOCUMENTS + "/")),
        "files": files,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    # `sha256sum -c SHA256SUMS` checks a backup without this tool.
    sums = {**files, MANIFEST: sha256_of(out / MANIFEST)}
    (out / CHECKSUMS).write_text("".join(f"{h}  {name}\n" for name, h in sorted(sums.items())))
    return manifest


# --- restore --------------------------------------------------------------------------


def verify(source: Path) -> dict[str, Any]:
    """The backup's manifest, once every file matches its checksum and nothing is missing."""
    if not (source / MANIFEST).is_file() or not (source / CHECKSUMS).is_file():
        raise BackupError(f"{source} holds no backup ({MANIFEST} and {CHECKSUMS} expected)")
    sums = {}
    for line in (source / CHECKSUMS).read_text().splitlines():
        digest, _, name = line.partition("  ")
        sums[name] = digest
    if sums.get(MANIFEST) != sha256_of(source / MANIFEST):
        raise BackupError(f"{MANIFEST} does not match its checksum")
    manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')} is not {FORMAT}")
    for name, digest in manifest["files"].items():
        path = source / name
        if sums.get(name) != digest or not path.is_file() or sha256_of(path) != digest:
            raise BackupError(f"{name} is missing or does not match its checksum")
    return manifest


def _postgres_target_rows(engine: Engine, schema: str) -> int:
    with engine.connect() as conn:
        if not _schema_exists(conn, schema):
            return 0
        return sum(
            int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in _tables(conn, schema)
        )


def _restore_postgres(settings: CommonSettings, source: Path, done: dict[str, Any]) -> None:
    # Each component in a fresh process: its migrations import its models, and two services'
    # models (both have an `information_requests`) cannot share one process's metadata.
    spawn = multiprocessing.get_context("spawn")
    for component, info in done.items():
        if component not in components():
            raise BackupError(f"the backup has {component}, which this installation lacks")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            pool.submit(_restore_component, settings, source, component, info).result()


def _restore_component(
    settings: CommonSettings, source: Path, component: str, info: dict[str, Any]
) -> None:
    location = components()[component]
    schema = settings.schema_for(component)
    engine = make_engine(settings, component)
    try:
        # Checked before: the schema holds no row, or --force was given.
        drop_schema(engine, schema)
        for revision in info["revisions"]:
            migrate(engine, location, schema, revision=revision)
        with engine.begin() as conn:
            for table in _tables(conn, schema):
                path = source / "database" / component / f"{table.name}.jsonl.gz"
                if path.exists():
                    _load_table(conn, table, path)
                    _reset_sequences(conn, table)
        migrate(engine, location, schema)
    finally:
        engine.dispose()


def _load_table(conn: Connection, table: sa.Table, path: Path) -> None:
    decoders = {c.name: d for c in table.columns if (d := _decoder(c)) is not None}
    batch: list[dict[str, Any]] = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            for name, decode in decoders.items():
                if name in row:
                    row[name] = decode(row[name])
            batch.append(row)
            if len(batch) >= _BATCH:
                conn.execute(table.insert(), batch)
                batch = []
    if batch:
        conn.execute(table.insert(), batch)


def _reset_sequences(conn: Connection, table: sa.Table) -> None:
    """Serial columns continue after the restored rows, not at 1 (a duplicate key)."""
    qualified = f'"{table.schema}"."{table.name}"'
    for column in table.columns:
        sequence = conn.execute(
            sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": qualified, "c": column.name}
        ).scalar()
        if sequence:
            conn.execute(
                sa.text(
                    f'SELECT setval(:s, coalesce((SELECT max("{column.name}") FROM {qualified}),'
                    " 0) + 1, false)"
                ),
                {"s": sequence},
            )


def _sqlite_target_rows(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return sum(
            int(db.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0])
            for n in names
            if n != "alembic_version" and not n.startswith("sqlite_")
        )


def _restore_sqlite(settings: CommonSettings, source: Path, done: dict[str, Any]) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for component in done:
        target = settings.data_dir / f"{component}.db"
        for stale in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            stale.unlink(missing_ok=True)
        _sqlite_copy(source / "database" / f"{component}.db", target)


def _nonempty_targets(settings: CommonSettings, kind: str, done: dict[str, Any]) -> list[str]:
    found = []
    for component in done:
        if kind == "postgresql":
            engine = make_engine(settings, component)
            try:
                rows = _postgres_target_rows(engine, settings.schema_for(component))
            finally:
                engine.dispose()
        else:
            rows = _sqlite_target_rows(settings.data_dir / f"{component}.db")
        if rows:
            found.append(f"{component} ({rows} rows)")
    documents = settings.document_folder()
    if documents.is_dir() and any(p.is_file() for p in documents.rglob("*")):
        found.append(DOCUMENTS)
    return found


def restore(settings: CommonSettings, source: Path, force: bool = False) -> dict[str, Any]:
    """Verify the backup in `source`, then load it into the configured databases and data
    folder; refuses a target that holds data unless `force` (which replaces it)."""
    manifest = verify(source)
    kind = manifest["database"]["kind"]
    done: dict[str, Any] = manifest["database"]["components"]
    if kind != ("postgresql" if settings.database_url else "sqlite"):
        raise BackupError(f"the backup is of {kind}; the target is not")
    occupied = _nonempty_targets(settings, kind, done)
    if occupied and not force:
        raise BackupError(
            "the target is not empty: " + ", ".join(occupied) + " (--force replaces it)"
        )
    # What is there was found empty or is to be replaced (--force): schemas, SQLite files
    # and documents are replaced whole.
    shutil.rmtree(settings.document_folder(), ignore_errors=True)
    if kind == "postgresql":
        _restore_postgres(settings, source, done)
    else:
        _restore_sqlite(settings, source, done)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for copied in manifest["copied"]:
        if copied == DOCUMENTS:
            shutil.copytree(source / copied, settings.document_folder())
        else:  # a key file, back at the top of the data folder
            shutil.copy2(source / copied, settings.data_dir / Path(copied).name)
    return manifest


# --- command line ---------------------------------------------------------------------

cli = typer.Typer(help="Back up and restore databases and documents.")


@cli.command("backup")
def backup_command(
    folder: Annotated[Path, typer.Argument(help="An empty or new folder for the backup")],
) -> None:
    """Back up every component's database and the document store into FOLDER."""
    try:
        manifest = backup(CommonSettings(), folder)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for component, info in manifest["database"]["components"].items():
        typer.echo(f"{component}: {sum(info['tables'].values())} rows")
    typer.echo(f"documents: {manifest['documents']} files; manifest: {folder / MANIFEST}")


@cli.command("restore")
def restore_command(
    folder: Annotated[Path, typer.Argument(help="A folder written by `reechannel backup`")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a target that already holds data")
    ] = False,
) -> None:
    """Check FOLDER's checksums, then restore it into the configured databases and data folder."""
    try:
        manifest = restore(CommonSettings(), folder, force=force)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"restored the backup of {manifest['created_at']}")
