"""Signed checkpoints: a tree head over every case's view heads per side, issued on a
schedule or on demand, their views and inclusion proofs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from services.review.audit_service.keys import SOURCE, AuditKeys
from services.review.domain.audit import (
    SIDES,
)
from services.review.domain.checkpoints import (
    SIGNATURE_ALGORITHM,
    Leaf,
    TreeHead,
    inclusion_proof,
    key_id,
    merkle_root,
    sign,
)
from services.review.store import AuditCheckpoint, Case
from shared.db import utcnow
from shared.events import AuditCheckpointIssued, SignedTreeHead, new_event
from shared.outbox import add_event

# --- checkpoints -----------------------------------------------------------------------------


def aware_utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _leaves(session: Session, side: str) -> list[Leaf]:
    """Every case's view head of `side`, in case-id order; China's only of cases sent to it."""
    if side == "EU":
        query = select(Case.id, Case.audit_seq_eu, Case.audit_head_eu).where(Case.audit_seq_eu > 0)
    else:
        query = select(Case.id, Case.audit_seq_cn, Case.audit_head_cn).where(
            Case.audit_seq_cn > 0, col(Case.sent_to_cn_at).is_not(None)
        )
    return [Leaf(c, s, h) for c, s, h in session.exec(query.order_by(col(Case.id)))]


def issue_checkpoint(session: Session, keys: AuditKeys) -> list[AuditCheckpoint]:
    """Sign one tree head per side over every case's current view head; stage the event.

    Runs in the caller's transaction: a concurrent issue on another replica takes the same
    number and one of the two commits fails (the caller retries).
    """
    last = session.exec(select(func.max(AuditCheckpoint.number))).one()
    number = int(last or 0) + 1
    now = utcnow()
    kid = key_id(keys.public_key)
    rows: list[AuditCheckpoint] = []
    for side in SIDES:
        leaves = _leaves(session, side)
        head = TreeHead(number, side, len(leaves), merkle_root(leaves), now, kid)
        row = AuditCheckpoint(
            number=number,
            side=side,
            tree_size=head.tree_size,
            root_hash=head.root_hash,
            issued_at=now,
            key_id=kid,
            signature=sign(keys.signing_key, head),
            leaves=[[leaf.case_id, leaf.seq, leaf.head] for leaf in leaves],
        )
        session.add(row)
        rows.append(row)
    data = AuditCheckpointIssued(
        number=number,
        issued_at=now,
        tree_heads=[SignedTreeHead(**checkpoint_view(r)) for r in rows],
    )
    add_event(session, new_event(SOURCE, "audit.checkpoint_issued", f"checkpoint-{number}", data))
    session.flush()
    return rows


def issue_with_retry(engine: Any, keys: AuditKeys, attempts: int = 3) -> list[dict[str, Any]]:
    """Issue a checkpoint in its own transaction, again if another replica took the number."""
    for attempt in range(attempts):
        try:
            with Session(engine) as session:
                rows = issue_checkpoint(session, keys)
                views = [checkpoint_view(r) for r in rows]
                session.commit()
                return views
        except IntegrityError:
            if attempt == attempts - 1:
                raise
    return []


def checkpoint_due(session: Session, every_seconds: float, started: datetime) -> bool:
    """Whether the newest checkpoint is older than the interval; with none yet, whether the
    service has run that long (a fresh or freshly loaded database is not walked at boot)."""
    last = session.exec(select(func.max(AuditCheckpoint.issued_at))).one()
    since = started if last is None else aware_utc(last)
    return (utcnow() - since).total_seconds() >= every_seconds


def checkpoint_view(row: AuditCheckpoint) -> dict[str, Any]:
    """A signed tree head as a side is given it (and may keep for `audit verify`)."""
    return {
        "number": row.number,
        "side": row.side,
        "tree_size": row.tree_size,
        "root_hash": row.root_hash,
        "issued_at": aware_utc(row.issued_at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "key_id": row.key_id,
        "signature": row.signature,
        "algorithm": SIGNATURE_ALGORITHM,
    }


def checkpoints_of(session: Session, side: str, number: int | None = None) -> list[AuditCheckpoint]:
    query = select(AuditCheckpoint).where(AuditCheckpoint.side == side)
    if number is not None:
        query = query.where(AuditCheckpoint.number == number)
    return list(session.exec(query.order_by(col(AuditCheckpoint.number))))


def proofs_for(session: Session, case_id: str, side: str) -> list[dict[str, Any]]:
    """For each of the side's checkpoints holding the case: its leaf and RFC 6962 audit path."""
    out = []
    for row in checkpoints_of(session, side):
        leaves = [Leaf(str(c), int(s), str(h)) for c, s, h in row.leaves]
        index = next((i for i, leaf in enumerate(leaves) if leaf.case_id == case_id), None)
        if index is None:
            continue
        out.append(
            {
                "number": row.number,
                "leaf_index": index,
                "seq": leaves[index].seq,
                "head": leaves[index].head,
                "audit_path": inclusion_proof(leaves, index),
            }
        )
    return out


def public_key_view(keys: AuditKeys) -> dict[str, Any]:
    raw = keys.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    pem = keys.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return {
        "algorithm": SIGNATURE_ALGORITHM,
        "key_id": key_id(keys.public_key),
        "public_key": raw.hex(),
        "pem": pem.decode("ascii"),
    }
