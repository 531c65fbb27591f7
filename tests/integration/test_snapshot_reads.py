"""snapshot_session (shared/db.py): a read of several queries sees one moment, so a view and
its timeline never disagree while a change lands (intake's application view, review's case
view). A plain session is the control: it sees the change between its two queries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from shared.config import CommonSettings
from shared.db import make_engine, snapshot_session
from tests.support import Infra


class TimelineRow(SQLModel, table=True):
    __tablename__ = "snapshot_reads_test"

    id: int = Field(primary_key=True)
    what: str


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest, infra: Infra, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "postgresql":
        if not infra.database_url:
            pytest.skip("no PostgreSQL here (DATABASE_URL)")
        own = infra.isolated(tmp_path)
        settings = CommonSettings(DATABASE_URL=own.database_url, REE_SCHEMA_PREFIX=own.prefix)
        engine = make_engine(settings, "snapshot")
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{settings.schema_for("snapshot")}"'))
    else:
        settings = CommonSettings(DATABASE_URL="", REE_DATA_DIR=str(tmp_path))
        engine = make_engine(settings, "snapshot")
    TimelineRow.__table__.create(engine)  # type: ignore[attr-defined]
    with Session(engine) as session:
        session.add(TimelineRow(id=1, what="submitted"))
        session.commit()
    yield engine
    engine.dispose()
    if request.param == "postgresql":
        own.drop_schemas()


def _count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(TimelineRow)).one())


def _land_a_change(engine: Engine) -> None:
    with Session(engine) as writer:
        writer.add(TimelineRow(id=2, what="withdrawn"))
        writer.commit()


def test_a_snapshot_read_does_not_see_a_change_landing_between_its_queries(
    engine: Engine,
) -> None:
    with snapshot_session(engine) as reader:
        first = _count(reader)
        _land_a_change(engine)
        assert _count(reader) == first == 1
    with snapshot_session(engine) as later:
        assert _count(later) == 2


def test_a_plain_session_does_see_it_the_control(engine: Engine) -> None:
    with Session(engine) as reader:
        first = _count(reader)
        _land_a_change(engine)
        assert (first, _count(reader)) == (1, 2)


def test_a_snapshot_session_refuses_to_write(engine: Engine) -> None:
    """Read-only on PostgreSQL; on SQLite the transaction is rolled back at the end."""
    with snapshot_session(engine) as reader:
        reader.add(TimelineRow(id=3, what="stray"))
        if engine.dialect.name == "postgresql":
            with pytest.raises(Exception, match="read-only"):
                reader.flush()
        else:
            reader.flush()
    with Session(engine) as session:
        assert _count(session) == 1
