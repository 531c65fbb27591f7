"""The audit trail's two keys from outside the database: the chain's HMAC key and the
Ed25519 key that signs checkpoints (a key file made once in development)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.config import AuditSettings

SOURCE = "reechannel/review"
KEY_FILE = "audit-signing-key"
# A tree head a side holds names its number and side; these are the fields it is made of.
TREE_HEAD_FIELDS = ("number", "side", "tree_size", "root_hash", "issued_at", "key_id", "signature")


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
