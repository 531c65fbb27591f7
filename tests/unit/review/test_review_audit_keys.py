"""The audit's keys come from settings: required in production, a kept key file in development."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.review.audit_service import KEY_FILE, AuditKeys
from services.review.settings import ReviewSettings
from shared.config import AuditSettings

# Production also needs Redis authentication (shared/config.py); these tests are about the keys.
PRODUCTION = {
    "REE_ENV": "production",
    "REE_TOKEN_SECRET": secrets.token_hex(32),
    "REDIS_URL": "redis://review:a-long-redis-password@127.0.0.1:6379/0",
}


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({}, "REE_AUDIT_KEY"),
        ({"REE_AUDIT_KEY": "short-audit-key"}, "REE_AUDIT_KEY"),
        ({"REE_AUDIT_KEY": secrets.token_hex(32)}, "REE_AUDIT_SIGNING_KEY"),
    ],
)
def test_review_refuses_production_without_its_own_audit_keys(
    given: dict[str, str], missing: str
) -> None:
    with pytest.raises(ValidationError) as error:
        ReviewSettings.model_validate(PRODUCTION | given)
    assert missing in str(error.value)
    for value in given.values():
        assert value not in str(error.value), "a rejected key is not echoed"


def test_production_takes_the_configured_keys() -> None:
    seed = secrets.token_hex(32)
    settings = ReviewSettings.model_validate(
        PRODUCTION | {"REE_AUDIT_KEY": "a" * 40, "REE_AUDIT_SIGNING_KEY": seed}
    )
    keys = AuditKeys.from_settings(settings)
    assert keys.chain_key == b"a" * 40
    assert keys.signing_key.private_bytes_raw().hex() == seed


def test_development_makes_one_signing_key_file_and_keeps_it(tmp_path: Path) -> None:
    settings = AuditSettings.model_validate({"REE_DATA_DIR": str(tmp_path)})
    first = AuditKeys.from_settings(settings)
    again = AuditKeys.from_settings(settings)
    assert first.public_key.public_bytes_raw() == again.public_key.public_bytes_raw()
    mode = (tmp_path / KEY_FILE).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]
