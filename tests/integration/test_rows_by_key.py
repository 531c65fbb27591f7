"""RowsByKey (shared/db.py) with `for_update`: a consumer's read locks its rows, so a request
that changes one meanwhile waits for the consumer's commit instead of being written over."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Field, Session, SQLModel

from shared.config import CommonSettings
from shared.db import RowsByKey, make_engine
from tests.support import Infra


class LockedRow(SQLModel, table=True):
    __tablename__ = "rows_by_key_test"

    id: str = Field(primary_key=True)
    status: str


@pytest.fixture
def engine(infra: Infra, tmp_path: Path) -> Iterator[Engine]:
    if not infra.database_url:
        pytest.skip("row locks are PostgreSQL's (SQLite serialises every writer)")
    own = infra.isolated(tmp_path)
    settings = CommonSettings(DATABASE_URL=own.database_url, REE_SCHEMA_PREFIX=own.prefix)
    engine = make_engine(settings, "rows")
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{settings.schema_for("rows")}"'))
    LockedRow.__table__.create(engine)  # type: ignore[attr-defined]
    with Session(engine) as session:
        session.add(LockedRow(id="a1", status="submitted"))
        session.commit()
    yield engine
    engine.dispose()
    own.drop_schemas()


def _withdraw_now(engine: Engine) -> int:
    """What intake's withdrawal does, but refusing to wait more than 200 ms for a lock."""
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL lock_timeout = '200ms'"))
        result = conn.execute(
            text("UPDATE rows_by_key_test SET status = 'withdrawn' WHERE id = 'a1'")
        )
        return int(result.rowcount)


@pytest.mark.parametrize("locking", [True, False])
def test_rows_read_for_update_are_locked_until_the_reader_commits(
    engine: Engine, locking: bool
) -> None:
    rows = RowsByKey(LockedRow, "id", "test.rows", for_update=locking)
    with Session(engine) as consumer:
        rows.load(consumer, ["a1"])
        row = rows.get(consumer, "a1")
        assert row is not None and row.status == "submitted"
        if locking:
            with pytest.raises(OperationalError, match="lock"):
                _withdraw_now(engine)
        else:
            assert _withdraw_now(engine) == 1, "without the lock the row was changed under it"
        consumer.rollback()
    assert _withdraw_now(engine) == 1
