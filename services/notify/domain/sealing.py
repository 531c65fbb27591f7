"""Webhook signing secrets sealed at rest: AES-256-GCM under keys the database never holds.

A sealed value reads `sealed:v1:<key id>:<nonce and ciphertext, base64url>`. The key id is the
first 8 hex digits of the key's SHA-256, so an operator never names keys by hand: the ring
opens what any of its keys sealed and seals with the current one. The associated data binds
a ciphertext to its purpose, so a value moved to another column does not open there.

Rotation (docs/notify.md, "Secrets at rest"): set the new key as current, keep the old one
among the old keys, run `reechannel webhook-secrets reseal`, then drop the old key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "sealed:v1:"
KEY_BYTES = 32
_NONCE_BYTES = 12
_PURPOSE = b"reechannel webhook signing secret"


class SealingError(Exception):
    """A sealed value that cannot be opened: unknown key, tampered or malformed."""


class UnknownKey(SealingError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"sealed with key {key_id}, which is not among the configured keys")
        self.key_id = key_id


def parse_key(text: str) -> bytes:
    """A key as the settings give it: 32 bytes in base64url (padding optional)."""
    raw = text.strip()
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secrets key is 32 bytes in base64url") from exc
    if len(key) != KEY_BYTES:
        raise ValueError(f"a webhook secrets key is {KEY_BYTES} bytes, not {len(key)}")
    return key


def new_key() -> str:
    """A fresh key, as the settings take it."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=")


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def sealed_key_id(value: str) -> str | None:
    """The id of the key a value was sealed with; None for a value not sealed."""
    if not is_sealed(value):
        return None
    return value[len(PREFIX) :].split(":", 1)[0]


@dataclass(frozen=True)
class KeyRing:
    current: bytes
    old: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, current: str, old: Iterable[str] = ()) -> KeyRing:
        return cls(parse_key(current), tuple(parse_key(k) for k in old if k.strip()))

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def knows(self, kid: str) -> bool:
        return any(key_id(k) == kid for k in (self.current, *self.old))

    def seal(self, secret: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self.current).encrypt(nonce, secret.encode(), _PURPOSE)
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{PREFIX}{self.current_id}:{body}"

    def open(self, value: str) -> str:
        """The secret a sealed value holds; a value from before sealing is returned as it is."""
        kid = sealed_key_id(value)
        if kid is None:
            return value
        body = value[len(PREFIX) + len(kid) + 1 :]
        key = next((k for k in (self.current, *self.old) if key_id(k) == kid), None)
        if key is None:
            raise UnknownKey(kid)
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            opened = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _PURPOSE)
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise SealingError(f"a value sealed with key {kid} does not open") from exc
        return opened.decode()
