"""Standard Webhooks signatures: endpoint secrets and the headers that let receivers verify us."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as secrets_module
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
# The specification asks for 24 to 64 bytes of key; 32 matches HMAC-SHA256's block strength.
SECRET_BYTES = 32
SIGNATURE_VERSION = "v1"


class InvalidWebhookSecret(ValueError):
    """A secret that is not `whsec_` followed by non-empty base64."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid webhook secret: {reason}")
        self.reason = reason


def generate_secret() -> str:
    """A new endpoint secret, `whsec_` + base64 of 32 random bytes (show it to the owner once)."""
    return SECRET_PREFIX + base64.b64encode(secrets_module.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidWebhookSecret(f"it must start with {SECRET_PREFIX!r}")
    encoded = secret[len(SECRET_PREFIX) :]
    # Receivers' libraries accept unpadded base64, so we do too rather than refuse a valid key.
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidWebhookSecret("the part after the prefix is not base64") from exc
    if not key:
        raise InvalidWebhookSecret("the key is empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "msg_id.timestamp.body">` for one secret."""
    signed_content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed_content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one signature per active secret, space-separated.

    During a rotation the endpoint has two secrets; signing with both lets the receiver
    switch keys at its own pace without rejecting a single delivery.
    """
    if not secrets:
        raise InvalidWebhookSecret("an endpoint needs at least one secret to sign with")
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)


def headers(msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]) -> dict[str, str]:
    """The HTTP headers of one delivery attempt (the worker adds its own `user-agent`)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
        "content-type": "application/json",
    }
