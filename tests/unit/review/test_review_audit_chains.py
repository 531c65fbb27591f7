"""The audit's keyed joint chain, the per-side view chains and the RFC 6962 checkpoints."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.review.domain.audit import (
    GENESIS_HASH,
    ViewEntry,
    append,
    commitment,
    verify,
    verify_view,
    view_link,
)
from services.review.domain.checkpoints import (
    Leaf,
    TreeHead,
    inclusion_proof,
    key_id,
    merkle_root,
    root_from_proof,
    sign,
    signature_valid,
)
from tests.unit.review.test_review_audit import history

KEY = b"k" * 32


def keyed_history() -> list:
    entries = []
    for entry in history():
        entries.append(append(entries[-1] if entries else None, entry, KEY))
    return entries


def test_the_joint_chain_verifies_only_under_its_key() -> None:
    entries = keyed_history()
    assert verify(entries, entries[-1].hash, key=KEY).ok
    # Whoever rewrites an entry without the key cannot give it a hash that verifies.
    forged = [append(None, dataclasses.replace(entries[0], payload={"x": 1}), b"guess" * 8)]
    assert not verify(forged, key=KEY).ok


def test_the_joint_chain_covers_the_salts() -> None:
    entries = keyed_history()
    entries[2] = dataclasses.replace(entries[2], salts={"EU": "00" * 32, "CN": "11" * 32})
    assert verify(entries, key=KEY).first_bad_index == 2


def test_a_commitment_is_salted() -> None:
    view = {"payload": {"priority": {"score": 70}}}
    a, b = secrets.token_hex(32), secrets.token_hex(32)
    assert commitment(a, view) == commitment(a, dict(view))
    assert commitment(a, view) != commitment(b, view)
    unsalted = hashlib.sha256(b'{"payload":{"priority":{"score":70}}}').hexdigest()
    assert unsalted not in (commitment(a, view), commitment(b, view))


def side_chain(views: list[dict]) -> list[ViewEntry]:
    out: list[ViewEntry] = []
    prev = GENESIS_HASH
    for n, view in enumerate(views, start=1):
        salt = secrets.token_hex(32)
        commitments = {"CN": commitment(salt, view), "EU": "e" * 64}
        link = view_link("case-1", "CN", n, prev, commitments)
        out.append(ViewEntry(n, view, salt, commitments, prev, link, f"e{n}"))
        prev = link
    return out


def test_a_side_verifies_its_view_chain_from_what_it_is_shown() -> None:
    chain = side_chain([{"action": "open"}, {"action": "admit"}, {"action": "refuse"}])
    assert verify_view("case-1", "CN", chain).ok
    altered = dataclasses.replace(chain[1], view={"action": "decline"})
    assert verify_view("case-1", "CN", [chain[0], altered, chain[2]]).first_bad_index == 1
    # The other side's commitment is bound too: swapping it breaks the link.
    swapped = dataclasses.replace(chain[2], commitments={**chain[2].commitments, "EU": "f" * 64})
    assert verify_view("case-1", "CN", [*chain[:2], swapped]).first_bad_index == 2
    assert verify_view("case-1", "CN", [chain[0], chain[2]]).first_bad_index == 1
    assert not verify_view("case-2", "CN", chain).ok


def _reference_root(leaves: list[bytes]) -> bytes:
    # RFC 6962 2.1 written out independently of the module under test.
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    left, right = _reference_root(leaves[:k]), _reference_root(leaves[k:])
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaves(n: int) -> list[Leaf]:
    return [Leaf(f"case-{i:03}", i + 1, hashlib.sha256(bytes([i])).hexdigest()) for i in range(n)]


def test_the_tree_is_the_rfc_6962_merkle_tree() -> None:
    assert merkle_root([]) == hashlib.sha256(b"").hexdigest()
    for n in range(1, 20):
        some = leaves(n)
        assert merkle_root(some) == _reference_root([leaf.data() for leaf in some]).hex()


def test_every_inclusion_proof_leads_to_the_root_and_no_other_leaf_does() -> None:
    for n in range(1, 20):
        some = leaves(n)
        root = merkle_root(some)
        for index, leaf in enumerate(some):
            proof = inclusion_proof(some, index)
            assert root_from_proof(leaf, index, n, proof) == root
            moved = dataclasses.replace(leaf, head="0" * 64)
            assert root_from_proof(moved, index, n, proof) != root
            shorter = dataclasses.replace(leaf, seq=leaf.seq - 1)
            assert root_from_proof(shorter, index, n, proof) != root


def test_a_tree_head_signature_is_bound_to_every_field_and_the_key() -> None:
    key = Ed25519PrivateKey.generate()
    head = TreeHead(
        3, "CN", 5, "a" * 64, datetime(2026, 12, 1, tzinfo=UTC), key_id(key.public_key())
    )
    signature = sign(key, head)
    assert signature_valid(key.public_key(), head, signature)
    for change in ({"root_hash": "b" * 64}, {"tree_size": 4}, {"side": "EU"}, {"number": 4}):
        assert not signature_valid(key.public_key(), dataclasses.replace(head, **change), signature)
    other = Ed25519PrivateKey.generate().public_key()
    assert not signature_valid(other, head, signature)
    assert not signature_valid(key.public_key(), head, "zz")
    assert (
        TreeHead.from_dict(dataclasses.asdict(head) | {"issued_at": "2026-12-01T00:00:00Z"}) == head
    )
