"""Verifying a case's chains, and every case against the checkpoints a side kept (the
API's verify route and `reechannel audit verify`)."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlmodel import Session, col, select

from services.review.audit_service.chain import (
    ViewChains,
    case_head_mac,
    entry_of,
    view_chains,
    view_heads,
)
from services.review.audit_service.checkpoints import aware_utc, checkpoint_view
from services.review.audit_service.keys import TREE_HEAD_FIELDS, AuditKeys
from services.review.domain.audit import (
    BACK_IN_TIME,
    SIDES,
    verify,
    verify_view,
)
from services.review.domain.checkpoints import (
    Leaf,
    TreeHead,
    merkle_root,
    signature_valid,
)
from services.review.store import AuditCheckpoint, AuditRecord, Case, audit_of
from shared.config import AuditSettings

# --- verification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    index: int | None
    entry_id: str | None
    reason: str


def _check_case(
    case: Case, records: Sequence[AuditRecord], chain_key: bytes, side: str | None
) -> tuple[Failure | None, ViewChains]:
    """The first problem of the case's chains as `side` may learn it (None: the operator)."""
    entries = [entry_of(r) for r in records]
    chains = view_chains(case.id, entries)
    joint = verify(entries, expected_head=case.audit_head, key=chain_key)
    if not joint.ok:
        return _as_seen_by(
            side, chains, joint.first_bad_index, joint.entry_id, joint.reason
        ), chains
    if not hmac.compare_digest(case_head_mac(case, chain_key), case.audit_head_mac):
        reason = "the case's recorded heads were changed (entries removed?)"
        return Failure(None, None, reason), chains
    for s in SIDES if side is None else (side,):
        result = verify_view(case.id, s, chains.entries[s])
        recorded = view_heads(case)[s]
        if result.ok and (len(chains.entries[s]), chains.head(s, len(chains.entries[s]))) != (
            recorded
        ):
            result = replace(
                result, ok=False, reason=f"{s} history does not end at the recorded head"
            )
        if not result.ok:
            return Failure(result.first_bad_index, result.entry_id, str(result.reason)), chains
    return None, chains


def _as_seen_by(
    side: str | None, chains: ViewChains, index: int | None, entry_id: str | None, reason: Any
) -> Failure:
    """A failure of the joint chain, named only if `side` sees that entry (F6: no more said)."""
    if side is None:
        return Failure(index, entry_id, str(reason))
    joint = chains.joint_index[side]
    if index is not None and index in joint:
        return Failure(joint.index(index), entry_id, str(reason))
    return Failure(None, None, "the history was altered")


def verify_case(
    session: Session, case: Case, keys: AuditKeys, side: str | None = None
) -> dict[str, Any]:
    """Verify one case's history: the keyed joint chain, the view chains and every checkpoint.

    `side` is the caller's side: then only that side's chain and checkpoints are checked, and
    a problem in an entry it may not see is reported without naming the entry.
    """
    records = audit_of(session, case.id)
    failure, chains = _check_case(case, records, keys.chain_key, side)
    checked = 0
    if failure is None:
        for checkpoint in _checkpoints_with(session, case.id, side):
            checked += 1
            problem = _case_against(checkpoint, case.id, chains, keys.public_key)
            if problem:
                failure = Failure(None, None, problem)
                break
    # A side is told about its own chain only (the joint one covers what it may not see).
    shown = len(chains.entries[side]) if side else len(records)
    head = (chains.head(side, shown) if side else case.audit_head) or ""
    return {
        "case_id": case.id,
        "ok": failure is None,
        "entries": shown,
        "head": head,
        "checkpoints_checked": checked,
        "first_bad_index": failure.index if failure else None,
        "entry_id": failure.entry_id if failure else None,
        "reason": failure.reason if failure else None,
    }


def _checkpoints_with(session: Session, case_id: str, side: str | None) -> list[AuditCheckpoint]:
    query = select(AuditCheckpoint).order_by(col(AuditCheckpoint.number))
    if side is not None:
        query = query.where(AuditCheckpoint.side == side)
    return [c for c in session.exec(query) if any(leaf[0] == case_id for leaf in c.leaves)]


def _head_of(checkpoint: AuditCheckpoint) -> TreeHead:
    return TreeHead(
        checkpoint.number,
        checkpoint.side,
        checkpoint.tree_size,
        checkpoint.root_hash,
        aware_utc(checkpoint.issued_at),
        checkpoint.key_id,
    )


def _case_against(
    checkpoint: AuditCheckpoint, case_id: str, chains: ViewChains, public_key: Ed25519PublicKey
) -> str | None:
    """Why the case's history does not reproduce what `checkpoint` committed to, or None."""
    head = _head_of(checkpoint)
    if not signature_valid(public_key, head, checkpoint.signature):
        return f"checkpoint {checkpoint.number} ({checkpoint.side}) is not signed by review's key"
    leaves = [Leaf(str(c), int(s), str(h)) for c, s, h in checkpoint.leaves]
    index = next(i for i, leaf in enumerate(leaves) if leaf.case_id == case_id)
    recomputed = chains.head(checkpoint.side, leaves[index].seq)
    if recomputed is None:
        return (
            f"the {checkpoint.side} history is shorter than checkpoint {checkpoint.number} "
            "recorded (entries removed)"
        )
    leaves[index] = Leaf(case_id, leaves[index].seq, recomputed)
    if merkle_root(leaves) != checkpoint.root_hash or len(leaves) != checkpoint.tree_size:
        return (
            f"the {checkpoint.side} history does not reproduce checkpoint {checkpoint.number} "
            "(altered since)"
        )
    return None


def verify_all(
    session: Session,
    keys: AuditKeys,
    case_id: str | None = None,
    held: Sequence[Mapping[str, Any]] | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Every case (or one) and every checkpoint: what `reechannel audit verify` reports.

    `held` are the tree heads a side kept (from `--checkpoints`); without them the signed
    checkpoints in the database are used. Each checkpoint is recomputed once over all its
    leaves from the current histories truncated at the checkpointed lengths.
    """
    failures: list[dict[str, Any]] = []
    checked = 0
    chains_of: dict[str, ViewChains] = {}
    query = select(Case).where(Case.id == case_id) if case_id else select(Case)
    for case in session.exec(query):
        checked += 1
        failure, chains = _check_case(case, audit_of(session, case.id), keys.chain_key, None)
        chains_of[case.id] = chains
        if failure:
            failures.append(
                {
                    "case_id": case.id,
                    "reference": case.reference,
                    "ok": False,
                    "first_bad_index": failure.index,
                    "entry_id": failure.entry_id,
                    "reason": failure.reason,
                }
            )
        if progress is not None and checked % 1000 == 0:
            progress(checked)
    heads = (
        list(held) if held is not None else [checkpoint_view(c) for c in _all_checkpoints(session)]
    )
    for head in heads:
        failures += _checkpoint_failures(session, head, keys.public_key, chains_of, case_id)
    return {
        "checked": checked,
        "checkpoints_checked": len(heads),
        "ok": not failures,
        "failures": failures,
    }


def _all_checkpoints(session: Session) -> list[AuditCheckpoint]:
    order = (col(AuditCheckpoint.number), col(AuditCheckpoint.side))
    return list(session.exec(select(AuditCheckpoint).order_by(*order)))


def _checkpoint_failures(
    session: Session,
    held: Mapping[str, Any],
    public_key: Ed25519PublicKey,
    chains_of: dict[str, ViewChains],
    only_case: str | None,
) -> list[dict[str, Any]]:
    head = TreeHead.from_dict(held)
    where = {"checkpoint": head.number, "side": head.side, "ok": False}
    if not signature_valid(public_key, head, str(held.get("signature", ""))):
        return [where | {"case_id": None, "reason": "not signed by review's key"}]
    stored = session.get(AuditCheckpoint, (head.number, head.side))
    if stored is None:
        return [where | {"case_id": None, "reason": "checkpoint missing from the database"}]
    leaves: list[Leaf] = []
    out: list[dict[str, Any]] = []
    for case_id, seq, recorded in stored.leaves:
        chains = chains_of.get(case_id)
        if chains is None and only_case is None:
            chains = ViewChains({s: [] for s in SIDES}, {s: [] for s in SIDES})
        recomputed = chains.head(head.side, seq) if chains is not None else recorded
        if recomputed is None:
            reason = "history shorter than the checkpoint recorded (entries removed)"
            out.append(where | {"case_id": case_id, "reason": reason})
        elif recomputed != recorded:
            out.append(where | {"case_id": case_id, "reason": "history altered since"})
        leaves.append(Leaf(case_id, seq, recomputed or ""))
    if merkle_root(leaves) != head.root_hash or len(leaves) != head.tree_size:
        if not out:
            reason = "the stored leaves do not reproduce the signed root (altered)"
            out.append(where | {"case_id": None, "reason": reason})
    else:
        out = []
    return out


def audit_verify_command(
    settings: AuditSettings, case_id: str | None, checkpoints: Path | None
) -> tuple[dict[str, Any], list[str]]:
    """`reechannel audit verify`: the report (for --json) and its lines for a person."""
    from shared.db import make_engine

    held = read_held_checkpoints(checkpoints) if checkpoints is not None else None
    engine = make_engine(settings, "review", pool_size=2)
    try:
        with Session(engine) as session:
            report = verify_all(session, AuditKeys.from_settings(settings), case_id, held)
    finally:
        engine.dispose()
    lines = [
        ("BACK IN TIME" if str(f["reason"]).startswith(BACK_IN_TIME) else "ALTERED")
        + f" case {f.get('case_id')}"
        + (f" ({f['reference']})" if f.get("reference") else "")
        + (f": entry {f['entry_id']} (index {f['first_bad_index']})" if f.get("entry_id") else "")
        + (f": checkpoint {f['checkpoint']} ({f['side']})" if "checkpoint" in f else "")
        + f": {f['reason']}"
        for f in report["failures"]
    ]
    lines.append(
        f"{report['checked']} case(s) and {report['checkpoints_checked']} checkpoint(s) checked, "
        f"{len(report['failures'])} failure(s)"
    )
    return report, lines


def read_held_checkpoints(path: Path) -> list[dict[str, Any]]:
    """Tree heads a side kept: a JSON file or a folder of them; each file holds one head, a
    list of heads, or a `GET /v1/audit/checkpoints` answer (`{"items": [...]}`)."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    heads: list[dict[str, Any]] = []
    for file in files:
        data = json.loads(file.read_text(encoding="utf-8"))
        items = data.get("items", [data]) if isinstance(data, dict) else data
        heads += [{k: item[k] for k in TREE_HEAD_FIELDS} for item in items]
    return heads
