"""Appending an entry to a case's joint chain and each side's view chain, and a side's
history rendered with its chain fields."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import Any

from services.review.domain.audit import (
    GENESIS_HASH,
    SIDES,
    AuditEntry,
    ViewEntry,
    canonical_json,
    commitment,
    entry_hash,
    head_mac,
    view_link,
)
from services.review.domain.visibility import history_entry_view
from services.review.store import AuditRecord, Case

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


def view_heads(case: Case) -> dict[str, tuple[int, str]]:
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
    for side, (seq, head) in view_heads(case).items():
        if views[side] is not None:
            _set_head(case, side, seq + 1, view_link(case.id, side, seq + 1, head, commitments))
    case.audit_seq, case.audit_head = entry.seq, entry.hash
    case.audit_head_mac = case_head_mac(case, chain_key)
    return entry


def case_head_mac(case: Case, chain_key: bytes) -> str:
    return head_mac(case.id, case.audit_seq, case.audit_head, view_heads(case), chain_key)


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
class ViewChains:
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


def view_chains(case_id: str, entries: Sequence[AuditEntry]) -> ViewChains:
    chains = ViewChains({s: [] for s in SIDES}, {s: [] for s in SIDES})
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
