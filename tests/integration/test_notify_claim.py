"""The delivery worker's claim on a real database: what it takes, what it holds back.

Both dialects where they are available: SQLite always, PostgreSQL when the run has one
(the backlog is bound differently on each; see `_held_back_by_backlog` in
services/notify/store/claims.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.notify import store
from services.notify.app import MIGRATIONS
from services.notify.backlog import UNKNOWN, Backlog
from services.notify.settings import NotifySettings
from services.notify.worker import DeliveryWorker
from shared.db import make_engine, migrate
from tests.support import Infra

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def worker(
    request: pytest.FixtureRequest, infra: Infra, tmp_path: Path
) -> Iterator[DeliveryWorker]:
    own = infra.isolated(tmp_path)
    if request.param == "sqlite":
        own.database_url = None
    elif not own.database_url:
        pytest.skip("this run has no PostgreSQL (DATABASE_URL)")
    settings = NotifySettings(
        DATABASE_URL=own.database_url,  # None: SQLite, whatever the environment says
        REDIS_URL=own.redis_url,
        REE_SCHEMA_PREFIX=own.prefix,
        REE_DATA_DIR=str(own.data_dir),
    )
    engine = make_engine(settings, "notify")
    migrate(engine, MIGRATIONS, settings.schema_for("notify"))
    yield DeliveryWorker(engine, settings, aioredis.Redis.from_url(own.redis_url))
    engine.dispose()
    own.drop_schemas()


def deliver(engine: Engine, *events: tuple[str | None, datetime]) -> list[str]:
    """A pending delivery per (application, event time) to one endpoint, due in this order."""
    ids = []
    with Session(engine) as session:
        endpoint = store.WebhookEndpoint(
            company_id="c1",
            url="https://receiver.example/hooks",
            event_types=["application.status_changed"],
            secret="whsec_test",
        )
        session.add(endpoint)
        for position, (application_id, event_time) in enumerate(events):
            message = store.Message(
                event_id=uuid.uuid4().hex,
                company_id="c1",
                application_id=application_id,
                type="application.status_changed",
                body="{}",
                event_time=event_time,
            )
            session.add(message)
            session.flush()
            delivery = store.schedule(session, message, endpoint, T0)
            delivery.next_attempt_at = T0 - timedelta(minutes=len(events) - position)
            ids.append(delivery.id)
        session.commit()
    return ids


def claimed(worker: DeliveryWorker, limit: int, backlog: Backlog) -> list[str]:
    return [job.delivery_id for job in worker.claim(limit, backlog)]


def test_the_backlog_holds_back_later_events_and_the_claim_still_fills_its_slots(
    worker: DeliveryWorker,
) -> None:
    at = [T0 + timedelta(minutes=n) for n in range(6)]
    a_later, b, c_same, d, ping = deliver(
        worker.engine, ("A", at[3]), ("B", at[2]), ("C", at[1]), ("D", at[4]), (None, at[5])
    )
    # A's event at 2 and C's other event at 1 are still in the streams: A's later delivery
    # waits, C's delivery of the same time does not (it is not later).
    backlog = Backlog({"A": at[2], "C": at[1], "E": at[0]})

    assert claimed(worker, 2, backlog) == [b, c_same], "the held-back row takes no slot"
    assert claimed(worker, 10, backlog) == [d, ping]
    assert claimed(worker, 10, backlog) == [], "the rest are leased or held back"
    assert claimed(worker, 10, Backlog({"A": at[3]})) == [a_later]


def test_an_unknown_backlog_lets_only_deliveries_of_no_application_out(
    worker: DeliveryWorker,
) -> None:
    a, ping = deliver(worker.engine, ("A", T0), (None, T0))
    assert claimed(worker, 10, UNKNOWN) == [ping]
    assert claimed(worker, 10, Backlog()) == [a]
