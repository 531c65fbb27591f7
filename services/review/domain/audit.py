"""The audit trail: a keyed hash chain of whole entries, and one chain per side over its view.

Two kinds of chain cover the same history (docs/review.md, "Audit"):

- the *joint chain* over every entry in full, keyed with HMAC-SHA256 (`entry_hash`): only the
  review service holds the key, so whoever can write the database cannot recompute it;
- a *view chain* per side (`view_link`): over the entries that side may see, numbered by that
  side alone, each link committing to the side's own view and to the other side's view through
  salted commitments (`commitment`). A side recomputes every link from what it is shown and
  learns nothing it may not see: the only hashes it gets over hidden data are salted with 256
  random bits it never receives, so they cannot be enumerated.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

__all__ = [
    "BACK_IN_TIME",
    "GENESIS_HASH",
    "SIDES",
    "AuditEntry",
    "VerificationResult",
    "ViewEntry",
    "append",
    "commitment",
    "entry_hash",
    "head_mac",
    "verify",
    "verify_view",
    "view_link",
]

# The "previous hash" of a case's first entry, in every chain.
GENESIS_HASH = "0" * 64
# How verify() begins the reason for an entry dated before the one it follows.
BACK_IN_TIME = "goes back in time"
# The sides that each keep a view chain; the applicant's history is not chained.
SIDES = ("EU", "CN")
# Only for unit tests and development: the services pass the key from settings (REE_AUDIT_KEY).
_TEST_KEY = b"dev-only-audit-key-change-me-0123456789"


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
    # One random 256-bit salt (hex) per side: it salts that side's view commitment.
    salts: Mapping[str, str] = field(default_factory=dict)

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

    def content(self) -> dict[str, Any]:
        """What a side's view of the entry is cut from: the body without the joint seq.

        A side numbers the entries it sees itself, so the joint position is not part of it.
        """
        body = self.body()
        del body["seq"], body["case_id"]
        return body

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


def entry_hash(entry: AuditEntry, prev_hash: str, key: bytes = _TEST_KEY) -> str:
    """HMAC-SHA256 hex, keyed, of the entry's body, its salts and the previous hash.

    Keyed because the database is not trusted to keep history: without the key (a setting,
    never stored in the database) a rewritten entry cannot be given a matching hash. The
    salts are covered so that they cannot be swapped to forge a side's commitment either.
    """
    document = {"prev_hash": prev_hash, "entry": entry.body(), "salts": dict(entry.salts)}
    return hmac.new(key, canonical_json(document), hashlib.sha256).hexdigest()


def append(previous: AuditEntry | None, entry: AuditEntry, key: bytes = _TEST_KEY) -> AuditEntry:
    """The entry chained after `previous` (None for the first): its seq, prev_hash and hash set."""
    prev_hash = previous.hash if previous else GENESIS_HASH
    seq = previous.seq + 1 if previous else 1
    if previous is not None and previous.case_id != entry.case_id:
        raise ValueError("an audit entry can only follow an entry of the same case")
    chained = replace(entry, seq=seq, prev_hash=prev_hash, hash="")
    return replace(chained, hash=entry_hash(chained, prev_hash, key))


def verify(
    entries: Sequence[AuditEntry], expected_head: str | None = None, key: bytes = _TEST_KEY
) -> VerificationResult:
    """Check a case's whole history, in order; report the first entry that does not fit.

    Detects an altered entry (its hash no longer matches), a removed, inserted or
    reordered one (the link to the previous hash or the sequence breaks), and an entry
    dated before the one it follows (BACK_IN_TIME: an intact chain written out of time
    order, e.g. by a back-dating simulator, is still not a true history). Removing the last
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
        elif not hmac.compare_digest(entry_hash(entry, entry.prev_hash, key), entry.hash):
            problem = "content does not match its hash (entry altered)"
        elif index and _utc(entry.at) < _utc(entries[index - 1].at):
            problem = (
                f"{BACK_IN_TIME}: dated {_utc(entry.at).isoformat()}, before the entry it "
                f"follows ({_utc(entries[index - 1].at).isoformat()})"
            )
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


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def head_mac(
    case_id: str, seq: int, head: str, views: Mapping[str, tuple[int, str]], key: bytes
) -> str:
    """HMAC-SHA256 hex, keyed, of a case's heads: its joint seq and head and each side's.

    Without it, dropping the newest entries and setting the heads back to the stored hashes
    before them would leave a chain that verifies; with it, that needs the key.
    """
    document = {
        "case_id": case_id,
        "seq": seq,
        "head": head,
        "views": {side: list(views[side]) for side in SIDES},
    }
    return hmac.new(key, canonical_json(document), hashlib.sha256).hexdigest()


# --- the view chains ----------------------------------------------------------------------


def commitment(salt: str, view: Mapping[str, Any]) -> str:
    """SHA-256 hex over a 256-bit salt and the canonical JSON of one side's view of an entry.

    The other side is shown this instead of the view: without the salt, guessing the view
    (e.g. every stock level from 0 to 400) finds nothing to compare with.
    """
    return hashlib.sha256(bytes.fromhex(salt) + canonical_json(view)).hexdigest()


def view_link(
    case_id: str, side: str, seq: int, prev_hash: str, commitments: Mapping[str, str | None]
) -> str:
    """One link of a side's view chain: its position, the previous link and every commitment.

    `commitments` holds, per side, the commitment to that side's view of the entry, or None
    when the entry is hidden from that side; the chain of one side thus also fixes what the
    other side was shown of every entry both see.
    """
    document = {
        "case_id": case_id,
        "side": side,
        "seq": seq,
        "prev_hash": prev_hash,
        "commitments": {s: commitments.get(s) for s in SIDES},
    }
    return hashlib.sha256(canonical_json(document)).hexdigest()


@dataclass(frozen=True)
class ViewEntry:
    """One entry as a side is shown it: its view, its own salt and every side's commitment."""

    seq: int
    view: Mapping[str, Any]
    salt: str
    commitments: Mapping[str, str | None]
    prev_hash: str
    hash: str
    id: str | None = None


def verify_view(case_id: str, side: str, entries: Sequence[ViewEntry]) -> VerificationResult:
    """Check a side's history with nothing but what that side is shown (a side runs this too).

    Each entry's own commitment must match its view and salt, its seq must follow on, and its
    link must follow from the previous link and the commitments.
    """
    prev_hash = GENESIS_HASH
    for index, entry in enumerate(entries):
        problem = None
        if entry.seq != index + 1:
            problem = f"sequence number {entry.seq} where {index + 1} was expected"
        elif entry.prev_hash != prev_hash:
            problem = "previous-hash link broken (an entry was removed, inserted or reordered)"
        elif commitment(entry.salt, entry.view) != entry.commitments.get(side):
            problem = "content does not match its commitment (entry altered)"
        elif view_link(case_id, side, entry.seq, prev_hash, entry.commitments) != entry.hash:
            problem = "content does not match its hash (entry altered)"
        if problem:
            return VerificationResult(False, index, entry.id, problem)
        prev_hash = entry.hash
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
