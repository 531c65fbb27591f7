"""The audit trail as a hash chain: each entry commits to its content and the entry before it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

__all__ = ["GENESIS_HASH", "AuditEntry", "VerificationResult", "append", "entry_hash", "verify"]

# The "previous hash" of a case's first entry.
GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    """One appended, never changed entry of a case's history.

    `seq` numbers entries from 1 within the case; `case_id` and `seq` are hashed too, so an
    entry cannot be moved to another case or position without breaking the chain.
    """

    id: str
    case_id: str
    seq: int
    actor_id: str
    actor_side: str
    actor_role: str | None
    action: str
    at: datetime
    from_state: str | None
    to_state: str | None
    payload: Mapping[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS_HASH
    hash: str = ""

    def body(self) -> dict[str, Any]:
        """Everything the hash covers except the previous hash."""
        return {
            "id": self.id,
            "case_id": self.case_id,
            "seq": self.seq,
            "actor": {"id": self.actor_id, "side": self.actor_side, "role": self.actor_role},
            "action": self.action,
            "at": _timestamp(self.at),
            "from_state": self.from_state,
            "to_state": self.to_state,
            "payload": self.payload,
        }

    def as_dict(self) -> dict[str, Any]:
        return self.body() | {"prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True)
class VerificationResult:
    ok: bool
    first_bad_index: int | None = None
    entry_id: str | None = None
    reason: str | None = None


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same bytes for the same data on either side.

    Only JSON types and dates are accepted; anything else is an error, because a value that
    serialises differently after a round trip through the database would break the chain.
    """
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_encode,
    ).encode("utf-8")


def entry_hash(entry: AuditEntry, prev_hash: str) -> str:
    """SHA-256 hex of the canonical JSON of the entry's body together with the previous hash."""
    document = {"prev_hash": prev_hash, "entry": entry.body()}
    return hashlib.sha256(canonical_json(document)).hexdigest()


def append(previous: AuditEntry | None, entry: AuditEntry) -> AuditEntry:
    """The entry chained after `previous` (None for the first): its seq, prev_hash and hash set."""
    prev_hash = previous.hash if previous else GENESIS_HASH
    seq = previous.seq + 1 if previous else 1
    if previous is not None and previous.case_id != entry.case_id:
        raise ValueError("an audit entry can only follow an entry of the same case")
    chained = replace(entry, seq=seq, prev_hash=prev_hash, hash="")
    return replace(chained, hash=entry_hash(chained, prev_hash))


def verify(entries: Sequence[AuditEntry], expected_head: str | None = None) -> VerificationResult:
    """Check a case's whole history, in order; report the first entry that does not fit.

    Detects an altered entry (its hash no longer matches), and a removed, inserted or
    reordered one (the link to the previous hash or the sequence breaks). Removing the last
    entries leaves a valid shorter chain: pass the head hash recorded elsewhere (e.g. on the
    case row, or the other side's copy) as `expected_head` to catch that too.
    """
    prev_hash = GENESIS_HASH
    case_id = entries[0].case_id if entries else None
    for index, entry in enumerate(entries):
        problem = None
        if entry.case_id != case_id:
            problem = "entry belongs to another case"
        elif entry.seq != index + 1:
            problem = (
                f"sequence number {entry.seq} where {index + 1} was expected (removed or reordered)"
            )
        elif entry.prev_hash != prev_hash:
            problem = "previous-hash link broken (an entry was removed, inserted or reordered)"
        elif entry_hash(entry, entry.prev_hash) != entry.hash:
            problem = "content does not match its hash (entry altered)"
        if problem:
            return VerificationResult(False, index, entry.id, problem)
        prev_hash = entry.hash
    if expected_head is not None and prev_hash != expected_head:
        last = len(entries) - 1 if entries else None
        return VerificationResult(
            False,
            last,
            entries[-1].id if entries else None,
            "history does not end at the recorded head (entries removed or added)",
        )
    return VerificationResult(True)


def _timestamp(at: datetime) -> str:
    # One spelling for every instant: UTC, microseconds, "Z". Naive times are ambiguous.
    if at.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not allowed in an audit entry")
