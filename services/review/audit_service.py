"""Review's audit trail at work: chaining entries, each side's view, verification, checkpoints.

The chains themselves are pure (services/review/domain/audit.py, checkpoints.py); this module
reads and writes them: it appends an entry to the joint chain and to each side's view chain,
renders a side's history with its chain fields, verifies a case (the API and the CLI), and
issues signed checkpoints of every case's view heads (docs/review.md, "Audit").
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from services.review.domain.audit import (
    GENESIS_HASH,
    SIDES,
    AuditEntry,
    ViewEntry,
    canonical_json,
    commitment,
    entry_hash,
    head_mac,
    verify,
    verify_view,
    view_link,
)
from services.review.domain.checkpoints import (
    SIGNATURE_ALGORITHM,
    Leaf,
    TreeHead,
    inclusion_proof,
    key_id,
    merkle_root,
    sign,
    signature_valid,
)
from services.review.domain.visibility import history_entry_view
from services.review.store import AuditCheckpoint, AuditRecord, Case, audit_of
from shared.config import AuditSettings
from shared.db import utcnow
from shared.events import AuditCheckpointIssued, SignedTreeHead, new_event
from shared.outbox import add_event

__all__ = [
    "AuditKeys",
    "chain_entry",
    "checkpoint_view",
    "history_for",
    "issue_checkpoint",
    "public_key_view",
    "record_of",
    "verify_all",
    "verify_case",
]

SOURCE = "reechannel/review"
KEY_FILE = "audit-signing-key"
# A tree head a side holds names its number and side; these are the fields it is made of.
_HEAD_FIELDS = ("number", "side", "tree_size", "root_hash", "issued_at", "key_id", "signature")


@dataclass(frozen=True)
class AuditKeys:
    """The two keys from outside the database: the chain's HMAC key and the signing key."""

    chain_key: bytes
    signing_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.signing_key.public_key()

    @classmethod
    def from_settings(cls, settings: AuditSettings) -> AuditKeys:
        return cls(settings.audit_key.encode("utf-8"), _signing_key(settings))


def _signing_key(settings: AuditSettings) -> Ed25519PrivateKey:
    """The configured key; in development a key file in the data folder, made once."""
    if settings.audit_signing_key:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(settings.audit_signing_key))
    path = settings.data_dir / KEY_FILE
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        seed = secrets.token_hex(32)
        # Written aside, then linked into place: replicas starting at once all read one key.
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(seed)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text().strip()))


# --- appending -------------------------------------------------------------------------------


def _views(entry: AuditEntry) -> dict[str, dict[str, Any] | None]:
    """Each side's view of the entry, normalised to JSON (what the side is shown, exactly)."""
    content = entry.content()
    views: dict[str, dict[str, Any] | None] = {}
    for side in SIDES:
        view = history_entry_view(side, content)  # type: ignore[arg-type]
        views[side] = None if view is None else json.loads(canonical_json(view))
    return views


def _commitments(entry: AuditEntry, views: Mapping[str, Any]) -> dict[str, str | None]:
    return {
        side: None if views[side] is None else commitment(entry.salts[side], views[side])
        for side in SIDES
    }


def _heads(case: Case) -> dict[str, tuple[int, str]]:
    return {
        "EU": (case.audit_seq_eu, case.audit_head_eu),
        "CN": (case.audit_seq_cn, case.audit_head_cn),
    }


def _set_head(case: Case, side: str, seq: int, head: str) -> None:
    if side == "EU":
        case.audit_seq_eu, case.audit_head_eu = seq, head
    else:
        case.audit_seq_cn, case.audit_head_cn = seq, head


def chain_entry(case: Case, entry: AuditEntry, chain_key: bytes) -> AuditEntry:
    """Salt `entry`, chain it after the case's joint head and each side's view head.

    Moves the case's heads on; returns the entry with its seq, salts and hashes set.
    """
    salts = {side: secrets.token_hex(32) for side in SIDES}
    entry = replace(entry, seq=case.audit_seq + 1, prev_hash=case.audit_head, salts=salts)
    entry = replace(entry, hash=entry_hash(entry, entry.prev_hash, chain_key))
    views = _views(entry)
    commitments = _commitments(entry, views)
    for side, (seq, head) in _heads(case).items():
        if views[side] is not None:
            _set_head(case, side, seq + 1, view_link(case.id, side, seq + 1, head, commitments))
    case.audit_seq, case.audit_head = entry.seq, entry.hash
    case.audit_head_mac = _head_mac(case, chain_key)
    return entry


def _head_mac(case: Case, chain_key: bytes) -> str:
    return head_mac(case.id, case.audit_seq, case.audit_head, _heads(case), chain_key)


def record_of(entry: AuditEntry) -> AuditRecord:
    return AuditRecord(
        id=entry.id,
        case_id=entry.case_id,
        seq=entry.seq,
        actor_id=entry.actor_id,
        actor_side=entry.actor_side,
        actor_role=entry.actor_role,
        action=entry.action,
        at=entry.at,
        from_state=entry.from_state,
        to_state=entry.to_state,
        payload=dict(entry.payload),
        prev_hash=entry.prev_hash,
        hash=entry.hash,
        salt_eu=entry.salts["EU"],
        salt_cn=entry.salts["CN"],
    )


def entry_of(record: AuditRecord) -> AuditEntry:
    at = record.at if record.at.tzinfo else record.at.replace(tzinfo=UTC)
    return AuditEntry(
        id=record.id,
        case_id=record.case_id,
        seq=record.seq,
        actor_id=record.actor_id,
        actor_side=record.actor_side,
        actor_role=record.actor_role,
        action=record.action,
        at=at,
        from_state=record.from_state,
        to_state=record.to_state,
        payload=record.payload,
        prev_hash=record.prev_hash,
        hash=record.hash,
        salts={"EU": record.salt_eu, "CN": record.salt_cn},
    )


# --- a side's history ----------------------------------------------------------------------


@dataclass
class _ViewChains:
    """Each side's view chain of one case, recomputed from its stored entries."""

    entries: dict[str, list[ViewEntry]] = field(default_factory=dict)
    # The joint index of each side's entries, to map a joint failure to what a side sees.
    joint_index: dict[str, list[int]] = field(default_factory=dict)

    def head(self, side: str, seq: int) -> str | None:
        """The side's head after `seq` entries (genesis for 0), None if the chain is shorter."""
        chain = self.entries[side]
        if seq == 0:
            return GENESIS_HASH
        return chain[seq - 1].hash if seq <= len(chain) else None


def view_chains(case_id: str, entries: Sequence[AuditEntry]) -> _ViewChains:
    chains = _ViewChains({s: [] for s in SIDES}, {s: [] for s in SIDES})
    prev = dict.fromkeys(SIDES, GENESIS_HASH)
    for index, entry in enumerate(entries):
        views = _views(entry)
        commitments = _commitments(entry, views)
        for side in SIDES:
            view = views[side]
            if view is None:
                continue
            seq = len(chains.entries[side]) + 1
            link = view_link(case_id, side, seq, prev[side], commitments)
            chains.entries[side].append(
                ViewEntry(seq, view, entry.salts[side], commitments, prev[side], link, entry.id)
            )
            chains.joint_index[side].append(index)
            prev[side] = link
    return chains


def history_for(side: str, records: Sequence[AuditRecord]) -> list[dict[str, Any]]:
    """The entries `side` may see, each with its chain fields, renumbered for that side.

    `salt` is the side's own salt (so it can recompute its commitment); `commitments` holds
    both sides' commitments (None where the entry is hidden from that side).
    """
    if not records:
        return []
    chains = view_chains(records[0].case_id, [entry_of(r) for r in records])
    return [_rendered(e) for e in chains.entries[side]]


def _rendered(entry: ViewEntry) -> dict[str, Any]:
    return dict(entry.view) | {
        "seq": entry.seq,
        "salt": entry.salt,
        "commitments": dict(entry.commitments),
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def view_entries(rendered: Iterable[Mapping[str, Any]]) -> list[ViewEntry]:
    """A side's history as the API returned it, back into what `verify_view` checks."""
    chain_fields = ("seq", "salt", "commitments", "prev_hash", "hash")
    return [
        ViewEntry(
            seq=int(e["seq"]),
            view={k: v for k, v in e.items() if k not in chain_fields},
            salt=str(e["salt"]),
            commitments=dict(e["commitments"]),
            prev_hash=str(e["prev_hash"]),
            hash=str(e["hash"]),
            id=e.get("id"),
        )
        for e in rendered
    ]


# --- verification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    index: int | None
    entry_id: str | None
    reason: str


def _check_case(
    case: Case, records: Sequence[AuditRecord], chain_key: bytes, side: str | None
) -> tuple[Failure | None, _ViewChains]:
    """The first problem of the case's chains as `side` may learn it (None: the operator)."""
    entries = [entry_of(r) for r in records]
    chains = view_chains(case.id, entries)
    joint = verify(entries, expected_head=case.audit_head, key=chain_key)
    if not joint.ok:
        return _as_seen_by(
            side, chains, joint.first_bad_index, joint.entry_id, joint.reason
        ), chains
    if not hmac.compare_digest(_head_mac(case, chain_key), case.audit_head_mac):
        reason = "the case's recorded heads were changed (entries removed?)"
        return Failure(None, None, reason), chains
    for s in SIDES if side is None else (side,):
        result = verify_view(case.id, s, chains.entries[s])
        recorded = _heads(case)[s]
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
    side: str | None, chains: _ViewChains, index: int | None, entry_id: str | None, reason: Any
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
        _aware(checkpoint.issued_at),
        checkpoint.key_id,
    )


def _case_against(
    checkpoint: AuditCheckpoint, case_id: str, chains: _ViewChains, public_key: Ed25519PublicKey
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
    chains_of: dict[str, _ViewChains] = {}
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
    chains_of: dict[str, _ViewChains],
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
            chains = _ViewChains({s: [] for s in SIDES}, {s: [] for s in SIDES})
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
        f"ALTERED case {f.get('case_id')}"
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
        heads += [{k: item[k] for k in _HEAD_FIELDS} for item in items]
    return heads


# --- checkpoints -----------------------------------------------------------------------------


def _aware(at: datetime) -> datetime:
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
    since = started if last is None else _aware(last)
    return (utcnow() - since).total_seconds() >= every_seconds


def checkpoint_view(row: AuditCheckpoint) -> dict[str, Any]:
    """A signed tree head as a side is given it (and may keep for `audit verify`)."""
    return {
        "number": row.number,
        "side": row.side,
        "tree_size": row.tree_size,
        "root_hash": row.root_hash,
        "issued_at": _aware(row.issued_at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
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
