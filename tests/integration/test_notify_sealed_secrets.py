"""The endpoints' signing secrets are sealed at rest; a key rotation keeps webhooks signed.

A real notify process on a deployment of the test's own, a real receiver verifying each
webhook with the secret the API showed once, and the table read as the database holds it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.notify.domain.sealing import PREFIX, key_id, new_key, parse_key
from shared.config import CommonSettings
from shared.db import is_sqlite, make_engine
from tests.integration.notify_support import (
    Receiver,
    new_company,
    notify_env,
    register,
    running_receiver,
)
from tests.support import ROOT, Infra, ServiceProcess, wait_until


@pytest.fixture
def own(infra: Infra, tmp_path: Path) -> Iterator[Infra]:
    deployment = infra.isolated(tmp_path)
    yield deployment
    deployment.drop_schemas()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


def _notify(own: Infra, **keys: str) -> ServiceProcess:
    return ServiceProcess("notify", notify_env(own, **keys))


@contextmanager
def _endpoints(own: Infra) -> Iterator[tuple[sa.Engine, sa.Table]]:
    """Notify's endpoints table of this deployment, as the database holds it (no sealing)."""
    settings = CommonSettings.model_validate(
        {"REE_DATA_DIR": str(own.data_dir), "REE_SCHEMA_PREFIX": own.prefix}
        | ({"DATABASE_URL": own.database_url} if own.database_url else {})
    )
    engine = make_engine(settings, "notify")
    try:
        schema = None if is_sqlite(engine) else settings.schema_for("notify")
        yield (
            engine,
            sa.Table("webhook_endpoints", sa.MetaData(schema=schema), autoload_with=engine),
        )
    finally:
        engine.dispose()


def _stored(own: Infra) -> list[tuple[str, str | None]]:
    """(secret, previous_secret) of every endpoint, as the database holds them."""
    with _endpoints(own) as (engine, table), engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.secret, table.c.previous_secret)).all()
    return [(secret, previous) for secret, previous in rows]


def _write_stored(own: Infra, secret: str) -> None:
    with _endpoints(own) as (engine, table), engine.begin() as conn:
        conn.execute(table.update().values(secret=secret))


def _test_webhook_verifies(notify: ServiceProcess, key: str, endpoint_id: str, box: Any) -> None:
    before = len(box.successes())
    with notify.client(key) as client:
        sent = client.post(f"/v1/webhook-endpoints/{endpoint_id}/test")
        assert sent.status_code == 202, sent.text
    wait_until(lambda: len(box.successes()) > before, what="a verified webhook.test")


def _reseal(own: Infra, **keys: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reechannel.cli", "webhook-secrets", "reseal", "--json"],
        env=own.env(**keys),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_secrets_are_sealed_in_the_database_and_survive_a_key_rotation(
    own: Infra, receiver: Receiver
) -> None:
    old, new = new_key(), new_key()
    company = new_company(own, "Sealed Magnets GmbH")
    box = receiver.mailbox()

    notify = _notify(own, REE_WEBHOOK_SECRETS_KEY=old).start()
    with notify.client(company["api_key"]) as client:
        endpoint = register(client, box, ["application.received"])
    _test_webhook_verifies(notify, company["api_key"], endpoint["id"], box)
    [(stored, previous)] = _stored(own)
    assert stored.startswith(f"{PREFIX}{key_id(parse_key(old))}:")
    assert endpoint["secret"] not in stored and "whsec_" not in stored and previous is None
    notify.stop()

    # A new current key, the old one kept to open what it sealed: webhooks still verify.
    notify = _notify(own, REE_WEBHOOK_SECRETS_KEY=new, REE_WEBHOOK_SECRETS_OLD_KEYS=old).start()
    _test_webhook_verifies(notify, company["api_key"], endpoint["id"], box)
    notify.stop()

    resealed = _reseal(own, REE_WEBHOOK_SECRETS_KEY=new, REE_WEBHOOK_SECRETS_OLD_KEYS=old)
    assert resealed.returncode == 0, resealed.stderr
    assert '"values": 1' in resealed.stdout
    [(stored, _)] = _stored(own)
    assert stored.startswith(f"{PREFIX}{key_id(parse_key(new))}:")

    # The old key dropped: everything opens with the new one alone.
    notify = _notify(own, REE_WEBHOOK_SECRETS_KEY=new).start()
    _test_webhook_verifies(notify, company["api_key"], endpoint["id"], box)
    notify.stop()

    # A key that sealed nothing here: the rotation changes nothing, notify will not start.
    stranger = new_key()
    refused = _reseal(own, REE_WEBHOOK_SECRETS_KEY=stranger)
    assert refused.returncode == 1 and "nothing was changed" in refused.stderr
    assert _stored(own)[0][0] == stored
    wrong = _notify(own, REE_WEBHOOK_SECRETS_KEY=stranger).start(wait_ready=False)
    assert wrong.proc is not None
    assert wrong.proc.wait(timeout=60) is not None
    assert "notify cannot start" in wrong.log_path.read_text()
    assert "not among the configured keys" in wrong.log_path.read_text()


def test_a_secret_stored_before_sealing_is_sealed_when_notify_starts(
    own: Infra, receiver: Receiver
) -> None:
    key = new_key()
    company = new_company(own, "Plain Oxides SA")
    box = receiver.mailbox()
    notify = _notify(own, REE_WEBHOOK_SECRETS_KEY=key).start()
    with notify.client(company["api_key"]) as client:
        endpoint = register(client, box, ["application.received"])
    notify.stop()
    _write_stored(own, endpoint["secret"])  # as a row from before this release holds it
    assert _stored(own)[0][0] == endpoint["secret"]

    notify = _notify(own, REE_WEBHOOK_SECRETS_KEY=key).start()
    [(stored, _)] = _stored(own)
    assert stored.startswith(PREFIX) and endpoint["secret"] not in stored
    _test_webhook_verifies(notify, company["api_key"], endpoint["id"], box)
    notify.stop()
