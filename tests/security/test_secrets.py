"""Secrets: never in a log, keys stored as hashes, and no production start with the dev secret.

This module runs after the others in tests/security (file order), so the log scan reads
everything the services wrote while the matrix, the visibility stories and schemathesis ran.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from sqlalchemy import text

from shared.config import CommonSettings
from shared.db import make_engine
from shared.directory import API_KEY_PREFIX, TOKEN_PREFIX
from tests.security.conftest import SERVICES, World
from tests.support import ROOT

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(
    ("secret", "why"),
    [(None, "must be set in production"), ("short-but-not-default", "at least 32 characters")],
)
def test_a_service_refuses_to_start_in_production_without_a_real_token_secret(
    world: World, service: str, secret: str | None, why: str
) -> None:
    env = world.infra.env(REE_ENV="production")
    env.pop("REE_TOKEN_SECRET", None)
    if secret:
        env["REE_TOKEN_SECRET"] = secret
    run = subprocess.run(
        [sys.executable, "-m", f"services.{service}"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "REE_TOKEN_SECRET" in run.stderr and why in run.stderr
    if secret:
        assert secret not in run.stderr + run.stdout, "the rejected secret is not printed"


def test_api_keys_and_tokens_are_stored_only_as_hashes(world: World) -> None:
    settings = CommonSettings.model_validate(world.infra.env())
    engine = make_engine(settings, "directory")
    with engine.connect() as conn:
        schema = settings.schema_for("directory")
        table = "credentials" if engine.dialect.name == "sqlite" else f'"{schema}".credentials'
        rows = conn.execute(text(f"SELECT * FROM {table}")).mappings().all()
    engine.dispose()
    stored = " ".join(str(v) for row in rows for v in row.values())
    hashes = {row["secret_hash"] for row in rows}
    for kind, credential in world.credentials.items():
        assert credential not in stored, kind
        assert hashlib.sha256(credential.encode()).hexdigest() in hashes, kind
    assert API_KEY_PREFIX not in stored and TOKEN_PREFIX not in stored


def test_no_service_log_contains_a_key_token_or_webhook_secret(world: World) -> None:
    logs = sorted(world.infra.data_dir.glob("*.log"))
    assert {p.name.split("-")[0] for p in logs} >= set(SERVICES)
    written = {p.name: p.read_text(errors="replace") for p in logs}
    assert all("DEBUG" in t for t in written.values()), "the services logged at DEBUG"
    leaks = [
        f"{name}: {secret[:12]}…"
        for name, body in written.items()
        for secret in set(world.secrets)
        if secret in body
    ]
    leaks += [
        f"{name}: {marker}"
        for name, body in written.items()
        for marker in (API_KEY_PREFIX, TOKEN_PREFIX, "whsec_")
        if marker in body
    ]
    assert not leaks, "\n".join(leaks)
