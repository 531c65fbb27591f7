"""Sealing the webhook signing secrets: AES-256-GCM under a ring of keys (pure logic)."""

from __future__ import annotations

import pytest

from services.notify.domain.sealing import (
    PREFIX,
    KeyRing,
    SealingError,
    UnknownKey,
    key_id,
    new_key,
    parse_key,
    sealed_key_id,
)
from services.notify.settings import NotifySettings

SECRET = "whsec_" + "A" * 43


def test_a_sealed_secret_opens_and_shows_nothing_of_itself() -> None:
    ring = KeyRing.of(new_key())
    first, second = ring.seal(SECRET), ring.seal(SECRET)
    assert first.startswith(PREFIX + ring.current_id + ":")
    assert SECRET not in first and "whsec" not in first
    assert first != second  # a fresh nonce each time
    assert ring.open(first) == ring.open(second) == SECRET
    assert len(first) < 255  # the column's width


def test_an_old_key_still_opens_and_an_unknown_one_is_named() -> None:
    old, new = new_key(), new_key()
    sealed_before = KeyRing.of(old).seal(SECRET)
    rotated = KeyRing.of(new, [old])
    assert rotated.open(sealed_before) == SECRET
    assert sealed_key_id(rotated.seal(SECRET)) == key_id(parse_key(new))
    with pytest.raises(UnknownKey) as refused:
        KeyRing.of(new).open(sealed_before)
    assert refused.value.key_id == key_id(parse_key(old))


def test_a_tampered_value_does_not_open() -> None:
    ring = KeyRing.of(new_key())
    sealed = ring.seal(SECRET)
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SealingError):
        ring.open(flipped)


def test_a_value_from_before_sealing_reads_as_it_is() -> None:
    assert KeyRing.of(new_key()).open(SECRET) == SECRET
    assert sealed_key_id(SECRET) is None


@pytest.mark.parametrize("text", ["", "short", "x" * 60, "not base64 !!"])
def test_a_key_that_is_not_32_bytes_of_base64url_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_key(text)


def test_production_refuses_the_development_key_and_a_malformed_one() -> None:
    production = {
        "REE_ENV": "production",
        "REE_TOKEN_SECRET": "t" * 40,
        "REE_AUDIT_KEY": "a" * 40,
        "REE_REDIS_PASSWORD": "p" * 20,
    }
    with pytest.raises(ValueError, match="REE_WEBHOOK_SECRETS_KEY must be set in production"):
        NotifySettings.model_validate(production)
    key = new_key()
    assert NotifySettings.model_validate(
        production | {"REE_WEBHOOK_SECRETS_KEY": key}
    ).key_ring() == KeyRing.of(key)
    with pytest.raises(ValueError, match="32 bytes"):
        NotifySettings.model_validate({"REE_WEBHOOK_SECRETS_OLD_KEYS": "abc"})
