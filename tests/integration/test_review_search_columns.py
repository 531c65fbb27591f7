"""The search columns as the migration and the benchmark's bulk load write them, and the index.

Runs review's real migrations on the test database (PostgreSQL when DATABASE_URL is set, else
SQLite). Each writer of `cases.search_eu` / `search_cn` other than the service (the migration's
backfill of existing cases, bench/scale.py's SQL) must write what the service would
(domain/search.searched_text), or a search would miss cases the others wrote.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import text
from sqlmodel import Session

from bench.scale import bulk_load
from services.review.domain.search import searched_text
from services.review.queue import QUEUE_ORDER, QueueFilter, queue_page, queue_query, queue_total
from shared.config import CommonSettings
from shared.db import drop_schema, is_sqlite, make_engine
from tests.integration.test_review_audit_migration import _filler, _upgrade

BEFORE = "f4a5b6c7d8e9"
APPLICATION: dict[str, Any] = {
    "mofcom_application_number": "MOFCOM-2026-004211",
    "exporter": {"name": "Baotou Magnet Co.", "uscc": "91150200MA0N1X2Y3Z"},
    "goods": [{"hs_code": "280530"}, {"hs_code": "8505111000"}],
    "consignee": {"name": "Hidden GmbH", "country": "DE"},
}


@pytest.fixture
def schema_engine(tmp_path: Path) -> Iterator[tuple[sa.Engine, str]]:
    prefix = f"s{uuid.uuid4().hex[:8]}_"
    settings = CommonSettings.model_validate(
        {"REE_DATA_DIR": str(tmp_path), "REE_SCHEMA_PREFIX": prefix}
        | ({"DATABASE_URL": os.environ["DATABASE_URL"]} if os.environ.get("DATABASE_URL") else {})
    )
    schema = settings.schema_for("review")
    engine = make_engine(settings, "review")
    try:
        yield engine, schema
    finally:
        drop_schema(engine, schema)
        engine.dispose()


def _columns(engine: sa.Engine) -> dict[str, tuple[str, str, str, str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, reference, company_name, search_eu, search_cn, application FROM cases")
        ).all()
    # SQLite hands the JSON back as text; PostgreSQL's driver parses it.
    return {
        r.id: (r.reference, r.company_name, r.search_eu, r.search_cn, _parsed(r.application))
        for r in rows
    }


def _parsed(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def test_the_migration_fills_the_search_columns_of_cases_opened_before_it(
    schema_engine: tuple[sa.Engine, str],
) -> None:
    engine, schema = schema_engine
    _upgrade(engine, schema, BEFORE)
    meta = sa.MetaData(schema=None if is_sqlite(engine) else schema)
    cases = sa.Table("cases", meta, autoload_with=engine)
    made = {"with goods": APPLICATION, "without": {"mofcom_application_number": "M-1"}}
    with engine.begin() as conn:
        for name, application in made.items():
            row = {c.name: _filler(c) for c in cases.columns if not c.nullable}
            row |= {
                "id": str(uuid.uuid4()),
                "application_id": str(uuid.uuid4()),
                "reference": f"REC-{name}",
                "company_name": "Alpha Motors AG",
                "application": application,
                "submitted_at": datetime(2026, 11, 2, tzinfo=UTC),
                "stage_started_on": date(2026, 11, 2),
            }
            conn.execute(cases.insert().values(**row))
    _upgrade(engine, schema, "head")
    written = _columns(engine)
    assert len(written) == 2
    for reference, company, eu, cn, application in written.values():
        assert eu == searched_text("EU", reference, company, application)
        assert cn == searched_text("CN", reference, company, application)
    assert any("alpha motors ag" in eu for _, _, eu, _, _ in written.values())


def test_bulk_loaded_cases_are_searched_as_the_service_writes_them_through_the_index(
    schema_engine: tuple[sa.Engine, str],
) -> None:
    engine, schema = schema_engine
    if is_sqlite(engine):
        pytest.skip("the bulk load is PostgreSQL's own SQL")
    _upgrade(engine, schema, "head")
    bulk_load(engine, 0, 60)
    written = _columns(engine)
    assert len(written) == 60
    for reference, company, eu, cn, application in written.values():
        assert eu == searched_text("EU", reference, company, application), reference
        assert cn == searched_text("CN", reference, company, application), reference
    with Session(engine) as session:
        # The benchmark's searches (bench/scenarios.py: search_checks) find what they mean to.
        for side, term, references in (
            ("EU", "mofcom-2025-0000020", ["BLK-20"]),
            ("CN", "mofcom-2025-0000020", ["BLK-20"]),
            ("EU", "0000020", ["BLK-20"]),
            # The index is asked for the serial; the whole term is still what must match.
            ("EU", "mofcom-2024-0000020", []),
            ("CN", "blk-20", ["BLK-20"]),
            ("EU", "bulk company 43", ["BLK-43"]),
            ("CN", "bulk company 43", []),
        ):
            wanted = QueueFilter(side=side, text=term)  # type: ignore[arg-type]
            rows = queue_page(session, wanted, QUEUE_ORDER, 0, 50, date.today())
            assert [r["reference"] for r in rows] == references, (side, term)
            assert queue_total(session, wanted, cap=10) == len(references)
        # With the planner told not to read the table, the search is answered by the index.
        session.execute(text("SET LOCAL enable_seqscan = off"))
        wanted = QueueFilter(side="EU", text="mofcom-2025-0000020")
        compiled = queue_query(wanted).compile(engine, compile_kwargs={"literal_binds": True})
        plan = "\n".join(r[0] for r in session.execute(text(f"EXPLAIN {compiled}")))
        assert "ix_cases_search_eu" in plan, plan
