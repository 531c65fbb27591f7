"""review: audit view chains per side, salted commitments, keyed joint chain, checkpoints

Revision ID: b7c41d2e9f30
Revises: c5f1e2a3b4d6
Create Date: 2026-12-01 10:05:00.000000

Existing histories are re-chained here (red-team F1, F3, F6): every entry gets two random
salts, the joint chain is recomputed with HMAC-SHA256 under REE_AUDIT_KEY, and each side's
view chain and head are computed. A case whose old, unkeyed chain no longer verified is not
re-chained: its joint hashes stay as they were, so `audit verify` keeps reporting it altered
instead of the migration laundering the change. This uses the audit code of this revision
(services/review/domain/audit.py, visibility.py); a later change to what a side sees of the
history needs its own re-chain migration.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "b7c41d2e9f30"
down_revision: str | None = "c5f1e2a3b4d6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("audit_seq_eu", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column(
                "audit_head_eu",
                sqlmodel.sql.sqltypes.AutoString(length=64),
                nullable=False,
                server_default=GENESIS,
            )
        )
        batch_op.add_column(
            sa.Column("audit_seq_cn", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column(
                "audit_head_cn",
                sqlmodel.sql.sqltypes.AutoString(length=64),
                nullable=False,
                server_default=GENESIS,
            )
        )
        batch_op.add_column(
            sa.Column(
                "audit_head_mac",
                sqlmodel.sql.sqltypes.AutoString(length=64),
                nullable=False,
                server_default="",
            )
        )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "salt_eu",
                sqlmodel.sql.sqltypes.AutoString(length=64),
                nullable=False,
                server_default="",
            )
        )
        batch_op.add_column(
            sa.Column(
                "salt_cn",
                sqlmodel.sql.sqltypes.AutoString(length=64),
                nullable=False,
                server_default="",
            )
        )
    op.create_table(
        "audit_checkpoints",
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("side", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
        sa.Column("tree_size", sa.Integer(), nullable=False),
        sa.Column("root_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("issued_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("signature", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("leaves", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("number", "side"),
    )
    _rechain(op.get_bind())


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_column("salt_cn")
        batch_op.drop_column("salt_eu")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("audit_head_mac")
        batch_op.drop_column("audit_head_cn")
        batch_op.drop_column("audit_seq_cn")
        batch_op.drop_column("audit_head_eu")
        batch_op.drop_column("audit_seq_eu")


_ENTRIES = sa.table(
    "audit_entries",
    sa.column("id", sa.String),
    sa.column("case_id", sa.String),
    sa.column("seq", sa.Integer),
    sa.column("actor_id", sa.String),
    sa.column("actor_side", sa.String),
    sa.column("actor_role", sa.String),
    sa.column("action", sa.String),
    sa.column("at", sqlmodel.sql.sqltypes.UTCDateTime()),
    sa.column("from_state", sa.String),
    sa.column("to_state", sa.String),
    sa.column("payload", sa.JSON),
    sa.column("prev_hash", sa.String),
    sa.column("hash", sa.String),
    sa.column("salt_eu", sa.String),
    sa.column("salt_cn", sa.String),
)
_CASES = sa.table(
    "cases",
    sa.column("id", sa.String),
    sa.column("audit_head", sa.String),
    sa.column("audit_seq_eu", sa.Integer),
    sa.column("audit_head_eu", sa.String),
    sa.column("audit_seq_cn", sa.Integer),
    sa.column("audit_head_cn", sa.String),
    sa.column("audit_head_mac", sa.String),
)


def _legacy_hash(entry: Any, prev_hash: str) -> str:
    # The chain before this revision: unkeyed SHA-256 over the body and the previous hash.
    from services.review.domain.audit import canonical_json

    return hashlib.sha256(
        canonical_json({"prev_hash": prev_hash, "entry": entry.body()})
    ).hexdigest()


def _rechain(conn: sa.Connection) -> None:
    import secrets

    from services.review.audit_service import view_chains
    from services.review.domain.audit import AuditEntry, entry_hash, head_mac
    from shared.config import AuditSettings

    key = AuditSettings().audit_key.encode("utf-8")
    heads = dict(conn.execute(sa.select(_CASES.c.id, _CASES.c.audit_head)).all())
    rows: dict[str, list[Any]] = {}
    for row in conn.execute(sa.select(_ENTRIES).order_by(_ENTRIES.c.case_id, _ENTRIES.c.seq)):
        rows.setdefault(row.case_id, []).append(row)
    for case_id, records in rows.items():
        entries = []
        # The first entry the old chain no longer vouches for (len: all intact).
        first_bad = None
        prev = GENESIS
        for index, r in enumerate(records):
            at = r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC)
            entry = AuditEntry(
                id=r.id,
                case_id=r.case_id,
                seq=r.seq,
                actor_id=r.actor_id,
                actor_side=r.actor_side,
                actor_role=r.actor_role,
                action=r.action,
                at=at,
                from_state=r.from_state,
                to_state=r.to_state,
                payload=r.payload or {},
                prev_hash=r.prev_hash,
                hash=r.hash,
                salts={"EU": secrets.token_hex(32), "CN": secrets.token_hex(32)},
            )
            ok = r.prev_hash == prev and _legacy_hash(entry, prev) == r.hash
            if first_bad is None and not ok:
                first_bad = index
            prev = r.hash
            entries.append(entry)
        intact = first_bad is None and prev == heads.get(case_id)
        # Re-key what the old chain vouches for; from the first bad entry on, the old hashes
        # stay, so the keyed verification names that entry instead of passing it.
        prev = GENESIS
        for i, entry in enumerate(entries[: len(entries) if first_bad is None else first_bad]):
            entry = replace(entry, prev_hash=prev)
            entries[i] = entry = replace(entry, hash=entry_hash(entry, prev, key))
            prev = entry.hash
        for entry in entries:
            conn.execute(
                _ENTRIES.update()
                .where(_ENTRIES.c.id == entry.id)
                .values(
                    prev_hash=entry.prev_hash,
                    hash=entry.hash,
                    salt_eu=entry.salts["EU"],
                    salt_cn=entry.salts["CN"],
                )
            )
        chains = view_chains(case_id, entries)
        eu, cn = chains.entries["EU"], chains.entries["CN"]
        values: dict[str, Any] = {
            "audit_seq_eu": len(eu),
            "audit_head_eu": eu[-1].hash if eu else GENESIS,
            "audit_seq_cn": len(cn),
            "audit_head_cn": cn[-1].hash if cn else GENESIS,
        }
        if intact:
            values["audit_head"] = prev
            views = {
                "EU": (len(eu), values["audit_head_eu"]),
                "CN": (len(cn), values["audit_head_cn"]),
            }
            values["audit_head_mac"] = head_mac(case_id, len(entries), prev, views, key)
        conn.execute(_CASES.update().where(_CASES.c.id == case_id).values(**values))
