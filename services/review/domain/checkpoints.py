"""Signed checkpoints of the audit: a Merkle tree head over every case's view-chain head.

The tree is the one of Certificate Transparency (RFC 6962, section 2.1): leaf hash
SHA-256(0x00 || leaf), node hash SHA-256(0x01 || left || right), the split at the largest
power of two below the size. One tree per side, over that side's view heads only, so a side
can check its checkpoint with what it sees. The tree head (number, side, size, root, time)
is signed with Ed25519 by a key outside the database: a rewrite of history and its stored
heads no longer reproduces a root that a side holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.review.domain.audit import canonical_json

__all__ = [
    "SIGNATURE_ALGORITHM",
    "Leaf",
    "TreeHead",
    "inclusion_proof",
    "key_id",
    "leaf_hash",
    "merkle_root",
    "root_from_proof",
    "sign",
    "signature_valid",
]

SIGNATURE_ALGORITHM = "Ed25519"
# Signed bytes start with this, so a signature over a tree head is never valid for anything else.
_CONTEXT = b"ree-channel audit checkpoint v1\n"


@dataclass(frozen=True)
class Leaf:
    """One case in a side's tree: its view chain's length and head at the checkpoint."""

    case_id: str
    seq: int
    head: str

    def data(self) -> bytes:
        return canonical_json({"case_id": self.case_id, "seq": self.seq, "head": self.head})


@dataclass(frozen=True)
class TreeHead:
    """What is signed: checkpoint number, side, number of leaves, root and issue time."""

    number: int
    side: str
    tree_size: int
    root_hash: str
    issued_at: datetime
    key_id: str

    def signed_bytes(self) -> bytes:
        return _CONTEXT + canonical_json(
            {
                "number": self.number,
                "side": self.side,
                "tree_size": self.tree_size,
                "root_hash": self.root_hash,
                "issued_at": self.issued_at,
                "key_id": self.key_id,
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TreeHead:
        issued_at = data["issued_at"]
        if isinstance(issued_at, str):
            issued_at = datetime.fromisoformat(issued_at.replace("Z", "+00:00"))
        return cls(
            number=int(data["number"]),
            side=str(data["side"]),
            tree_size=int(data["tree_size"]),
            root_hash=str(data["root_hash"]),
            issued_at=issued_at,
            key_id=str(data["key_id"]),
        )


def leaf_hash(leaf: Leaf) -> bytes:
    return hashlib.sha256(b"\x00" + leaf.data()).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root(hashes: Sequence[bytes]) -> bytes:
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return _node(_root(hashes[:k]), _root(hashes[k:]))


def merkle_root(leaves: Sequence[Leaf]) -> str:
    """The RFC 6962 Merkle tree hash (hex) of the leaves, in the order given."""
    return _root([leaf_hash(leaf) for leaf in leaves]).hex()


def inclusion_proof(leaves: Sequence[Leaf], index: int) -> list[str]:
    """RFC 6962 audit path (hex, bottom up) of the leaf at `index`."""
    hashes = [leaf_hash(leaf) for leaf in leaves]

    def path(m: int, nodes: Sequence[bytes]) -> list[bytes]:
        if len(nodes) <= 1:
            return []
        k = _split(len(nodes))
        if m < k:
            return [*path(m, nodes[:k]), _root(nodes[k:])]
        return [*path(m - k, nodes[k:]), _root(nodes[:k])]

    if not 0 <= index < len(hashes):
        raise ValueError("leaf index outside the tree")
    return [h.hex() for h in path(index, hashes)]


def root_from_proof(leaf: Leaf, index: int, tree_size: int, proof: Sequence[str]) -> str | None:
    """The root an audit path leads to from `leaf` (RFC 9162, 2.1.3.2), or None if malformed."""
    if not 0 <= index < tree_size:
        return None
    fn, sn = index, tree_size - 1
    r = leaf_hash(leaf)
    for step in proof:
        p = bytes.fromhex(step)
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            r = _node(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return r.hex() if sn == 0 else None


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short name for a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    return hashlib.sha256(_raw(public_key)).hexdigest()[:16]


def sign(private_key: Ed25519PrivateKey, head: TreeHead) -> str:
    return private_key.sign(head.signed_bytes()).hex()


def signature_valid(public_key: Ed25519PublicKey, head: TreeHead, signature: str) -> bool:
    try:
        public_key.verify(bytes.fromhex(signature), head.signed_bytes())
    except (InvalidSignature, ValueError):
        return False
    return True


def _raw(public_key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
