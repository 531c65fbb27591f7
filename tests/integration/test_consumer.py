"""The stream consumer on a real Redis: producer check, recorded errors, dead-lettering.

The consumer runs in the test's own event loop on a SQLite file, with handlers that record
what they applied, so each test can tell exactly what was applied and what was not.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from shared.consumer import StreamConsumer, dlq_stream
from shared.events import REVIEW_STREAM, STREAM_SOURCES, CloudEvent, new_event
from shared.outbox import ProcessedEvent
from shared.redis import connect
from tests.support import Infra

REVIEW_SOURCE = STREAM_SOURCES[REVIEW_STREAM]


def case_opened(source: str = REVIEW_SOURCE) -> CloudEvent:
    from shared.events import CaseOpened

    case_id = str(uuid.uuid4())
    event = new_event(
        REVIEW_SOURCE,
        "case.opened",
        case_id,
        CaseOpened(
            case_id=case_id,
            application_id=str(uuid.uuid4()),
            reference="REE-2026-000001",
            company_id=str(uuid.uuid4()),
            state="eu_screening",
            priority_tier="P2",
        ),
    )
    return event.model_copy(update={"source": source})


class Applied:
    """A handler that records the events it applied, and fails for those it is told to."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.failing: set[str] = set()

    def __call__(self, _session: Session, event: CloudEvent) -> None:
        if event.id in self.failing:
            raise RuntimeError(f"cannot apply {event.id} yet")
        self.ids.append(event.id)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'consumer.db'}")
    SQLModel.metadata.create_all(engine, tables=[ProcessedEvent.__table__])  # type: ignore[attr-defined]
    yield engine
    engine.dispose()


@pytest.fixture
def stream(infra: Infra) -> Iterator[str]:
    """A stream of this test's own, named like review's, removed afterwards."""
    name = f"{infra.prefix}{uuid.uuid4().hex[:6]}_{REVIEW_STREAM}"
    yield name
    r = infra.redis()
    r.delete(name, dlq_stream(name), *r.keys(f"{name}.errors:*"))


@pytest.fixture
async def consumer(infra: Infra, engine: Engine, stream: str) -> AsyncIterator[StreamConsumer]:
    client = connect(infra.redis_url)
    consumer = StreamConsumer(
        client,
        engine,
        stream,
        group="intake",
        handlers={"case.opened": Applied()},
        block_ms=10,
        claim_idle_ms=0,
        max_deliveries=2,
        producer=REVIEW_SOURCE,
    )
    await client.xgroup_create(stream, "intake", id="0", mkstream=True)
    yield consumer
    await client.aclose()


def handler(consumer: StreamConsumer) -> Applied:
    applied = consumer.handlers["case.opened"]
    assert isinstance(applied, Applied)
    return applied


def dead_letters(r: redis.Redis, stream: str) -> list[dict[str, Any]]:
    entries: Any = r.xrange(dlq_stream(stream))
    return [fields for _id, fields in entries]


async def test_an_entry_of_another_producer_is_dead_lettered_with_the_reason_and_never_applied(
    consumer: StreamConsumer, infra: Infra, stream: str
) -> None:
    r = infra.redis()
    forged = case_opened(source="reechannel/intake")
    genuine = case_opened()
    r.xadd(stream, forged.to_fields())
    r.xadd(stream, genuine.to_fields())
    await consumer.read_once()
    assert handler(consumer).ids == [genuine.id]
    [letter] = dead_letters(r, stream)
    assert letter["id"] == forged.id
    assert "'reechannel/intake' is not 'reechannel/review'" in letter["dlq_error"]
    assert r.xpending(stream, "intake")["pending"] == 0
    # Reclaiming finds nothing left of it, and applies nothing more.
    await consumer.reclaim_once()
    assert handler(consumer).ids == [genuine.id]
    assert len(dead_letters(r, stream)) == 1


async def test_a_forged_entry_alone_in_its_read_is_not_applied_either(
    consumer: StreamConsumer, infra: Infra, stream: str
) -> None:
    r = infra.redis()
    forged = case_opened(source="attacker")
    r.xadd(stream, forged.to_fields())
    await consumer.read_once()
    assert handler(consumer).ids == []
    assert [letter["id"] for letter in dead_letters(r, stream)] == [forged.id]


async def test_the_error_of_an_entry_that_finally_applied_is_forgotten(
    consumer: StreamConsumer, infra: Infra, stream: str
) -> None:
    r = infra.redis()
    event = case_opened()
    handler(consumer).failing.add(event.id)
    entry_id = r.xadd(stream, event.to_fields())
    await consumer.read_once()
    errors = f"{stream}.errors:intake"
    assert "cannot apply" in str(r.hget(errors, entry_id))
    handler(consumer).failing.clear()
    await consumer.reclaim_once()
    assert handler(consumer).ids == [event.id]
    assert r.hget(errors, entry_id) is None
    assert r.xpending(stream, "intake")["pending"] == 0


async def test_a_dead_lettered_entry_is_on_the_dead_letter_stream_once_and_no_longer_pending(
    consumer: StreamConsumer, infra: Infra, stream: str
) -> None:
    r = infra.redis()
    event = case_opened()
    handler(consumer).failing.add(event.id)
    entry_id = r.xadd(stream, event.to_fields())
    await consumer.read_once()
    for _ in range(consumer.max_deliveries):
        await consumer.reclaim_once()
    [letter] = dead_letters(r, stream)
    assert letter["id"] == event.id and "cannot apply" in letter["dlq_error"]
    assert r.xpending(stream, "intake")["pending"] == 0
    assert r.hget(f"{stream}.errors:intake", entry_id) is None
    # A second consumer that claimed the entry before it went dead-letters it too late:
    # the entry is no longer pending, so nothing is written again.
    await consumer._dead_letter(entry_id, event.to_fields(), consumer.max_deliveries + 1)
    assert len(dead_letters(r, stream)) == 1
    assert handler(consumer).ids == []
