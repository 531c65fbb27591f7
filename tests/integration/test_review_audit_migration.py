"""The audit migration re-chains histories written before it, and does not launder altered ones.

Runs review's real migrations on the test database (PostgreSQL when DATABASE_URL is set, else
SQLite): up to the revision before the view chains, legacy rows written with the old unkeyed
formula, then up to the newest.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlmodel import Session

from services.review.app import MIGRATIONS
from services.review.audit_service import AuditKeys, history_for, verify_case, view_entries
from services.review.domain.audit import GENESIS_HASH, AuditEntry, canonical_json, verify_view
from services.review.store import Case, audit_of
from shared.config import AuditSettings
from shared.db import drop_schema, is_sqlite, make_engine

BEFORE = "9a7ce815e083"


def _upgrade(engine: sa.Engine, schema: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if not is_sqlite(engine):
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            conn.execute(text(f'SET LOCAL search_path TO "{schema}"'))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _filler(column: sa.Column[Any]) -> Any:
    """Some value of the column's type, for the columns a case row needs and this test not."""
    try:
        kind = column.type.python_type
    except NotImplementedError:
        kind = str
    return {
        int: 0,
        float: 0.0,
        bool: False,
        date: date(2026, 11, 2),
        datetime: datetime(2026, 11, 2, tzinfo=UTC),
        dict: {},
        list: [],
    }.get(kind, "x")


def _legacy_history(case_id: str, tamper: bool) -> list[dict[str, Any]]:
    rows, prev = [], GENESIS_HASH
    steps = [
        ("system", None, "open", None, "eu_screening", {"priority": {"tier": "P1", "score": 70}}),
        ("EU", "officer", "admit", "eu_screening", "queued", {}),
        (
            "EU",
            "officer",
            "note_added",
            None,
            None,
            {"note_id": "n", "visibility": "eu", "text": "x"},
        ),
        ("CN", "officer", "refuse", "cn_review", "refused", {"reason": "listed_entity"}),
    ]
    for n, (side, role, action, before, after, payload) in enumerate(steps, start=1):
        entry = AuditEntry(
            id=str(uuid.uuid4()),
            case_id=case_id,
            seq=n,
            actor_id=f"{side}-{role}",
            actor_side=side,
            actor_role=role,
            action=action,
            at=datetime(2026, 11, 2, 9, tzinfo=UTC) + timedelta(hours=n),
            from_state=before,
            to_state=after,
            payload=payload,
        )
        digest = hashlib.sha256(
            canonical_json({"prev_hash": prev, "entry": entry.body()})
        ).hexdigest()
        row = entry.as_dict() | {"at": entry.at, "prev_hash": prev, "hash": digest}
        actor = row.pop("actor")
        rows.append(
            row
            | {"actor_id": actor["id"], "actor_side": actor["side"], "actor_role": actor["role"]}
        )
        prev = digest
    if tamper:
        rows[3]["payload"] = {"reason": "incomplete_file"}
    return rows


def test_the_migration_rechains_intact_histories_and_leaves_altered_ones_altered(
    tmp_path: Path,
) -> None:
    prefix = f"m{uuid.uuid4().hex[:8]}_"
    settings = AuditSettings.model_validate(
        {"REE_DATA_DIR": str(tmp_path), "REE_SCHEMA_PREFIX": prefix}
        | ({"DATABASE_URL": os.environ["DATABASE_URL"]} if os.environ.get("DATABASE_URL") else {})
    )
    schema = settings.schema_for("review")
    engine = make_engine(settings, "review")
    try:
        _upgrade(engine, schema, BEFORE)
        meta = sa.MetaData(schema=None if is_sqlite(engine) else schema)
        cases = sa.Table("cases", meta, autoload_with=engine)
        entries = sa.Table("audit_entries", meta, autoload_with=engine)
        ids = {"intact": str(uuid.uuid4()), "altered": str(uuid.uuid4())}
        with engine.begin() as conn:
            for name, case_id in ids.items():
                history = _legacy_history(case_id, tamper=name == "altered")
                row = {c.name: _filler(c) for c in cases.columns if not c.nullable}
                row |= {
                    "id": case_id,
                    "application_id": case_id,
                    "reference": name,
                    "audit_seq": len(history),
                    "audit_head": history[-1]["hash"],
                    "sent_to_cn_at": datetime(2026, 11, 2, tzinfo=UTC),
                }
                conn.execute(cases.insert().values(**row))
                for entry in history:
                    conn.execute(entries.insert().values(**entry))
        _upgrade(engine, schema, "head")

        keys = AuditKeys.from_settings(settings)
        with Session(engine) as session:
            intact = session.get(Case, ids["intact"])
            altered = session.get(Case, ids["altered"])
            assert intact is not None and altered is not None
            assert verify_case(session, intact, keys)["ok"] is True
            result = verify_case(session, altered, keys)
            assert result["ok"] is False and result["first_bad_index"] == 3
            # Each side's view chain was built: China's skips the EU note, both verify.
            records = audit_of(session, intact.id)
            assert len({r.salt_eu for r in records} | {r.salt_cn for r in records}) == 8
            cn = history_for("CN", records)
            assert [e["action"] for e in cn] == ["open", "admit", "refuse"]
            assert (intact.audit_seq_cn, intact.audit_head_cn) == (3, cn[-1]["hash"])
            assert verify_view(intact.id, "CN", view_entries(cn)).ok
            assert verify_view(intact.id, "EU", view_entries(history_for("EU", records))).ok
    finally:
        drop_schema(engine, schema)
        engine.dispose()
