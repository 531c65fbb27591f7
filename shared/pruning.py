"""Tables that stop growing: rows no one can need any more are deleted in small batches.

Every service keeps two records of its events: the outbox (what it published) and the
processed-event ids (what it applied, so that a redelivered event is skipped). Both would
grow with every application ever filed. A published outbox row is needed only while the
relay may publish it again, that is while it is inside the replay window
(`REE_OUTBOX_REPLAY_HOURS`, shared/outbox.py). A processed-event id is needed as long as
its event can come again: while it may still be on its stream (the stream's retention), be
published again by a replay, or be put back by an operator's dead-letter replay. The
redelivery horizon (`REE_PROCESSED_EVENTS_HOURS`) must exceed the first two together (the
settings check it), and nothing newer than the oldest dead letter of a stream the service
reads is ever pruned.

One replica at a time prunes a schema (a PostgreSQL advisory lock, as `upkeep_tables`
does); each batch is a transaction of its own, so no delete holds locks for long.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import delete, select, text, tuple_
from sqlalchemy.engine import Connection, Engine

from shared.consumer import dlq_stream
from shared.db import advisory_key, is_sqlite, utcnow
from shared.outbox import OutboxEvent, ProcessedEvent

log = logging.getLogger(__name__)

# A rule deletes at most `limit` rows older than its cutoff in one transaction on `conn`
# and returns how many went; it is called again while it deletes a whole batch.
Rule = Callable[[Connection, int], int]

_OUTBOX: Any = OutboxEvent.__table__  # type: ignore[attr-defined]
_PROCESSED: Any = ProcessedEvent.__table__  # type: ignore[attr-defined]


# The index each delete walks, created by a migration in each service's own chain.
Index = tuple[str, str, list[str]]  # table, index name, columns
PROCESSED_EVENTS_INDEX: Index = ("processed_events", "ix_processed_events_time", ["processed_at"])


def index_migration(*indexes: Index) -> tuple[Callable[[], None], Callable[[], None]]:
    """The `upgrade` and `downgrade` of a migration that adds these indexes (each service's
    chain has one; the chains cannot share a revision)."""
    from alembic import op

    def upgrade() -> None:
        for table, name, columns in indexes:
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.create_index(name, columns, unique=False)

    def downgrade() -> None:
        for table, name, _columns in reversed(indexes):
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.drop_index(name)

    return upgrade, downgrade


@dataclass(frozen=True)
class Pruned:
    """What one round deleted, per table."""

    rows: dict[str, int]

    def __bool__(self) -> bool:
        return any(self.rows.values())


def published_outbox_rule(before: datetime) -> Rule:
    """Outbox rows published before `before`; an unpublished row never goes.

    `published_at < before` walks ix_outbox_unpublished (published_at, seq) from its start;
    unpublished rows (NULL) are not in that range.
    """

    def rule(conn: Connection, limit: int) -> int:
        batch = (
            select(_OUTBOX.c.seq)
            .where(_OUTBOX.c.published_at < before)
            .order_by(_OUTBOX.c.published_at)
            .limit(limit)
        )
        with conn.begin():
            result = conn.execute(delete(_OUTBOX).where(_OUTBOX.c.seq.in_(batch.scalar_subquery())))
        return int(result.rowcount)

    return rule


def processed_events_rule(before: datetime) -> Rule:
    """Processed-event ids recorded before `before` (walks ix_processed_events_time)."""

    def rule(conn: Connection, limit: int) -> int:
        key = tuple_(_PROCESSED.c.consumer_group, _PROCESSED.c.event_id)
        batch = (
            select(_PROCESSED.c.consumer_group, _PROCESSED.c.event_id)
            .where(_PROCESSED.c.processed_at < before)
            .order_by(_PROCESSED.c.processed_at)
            .limit(limit)
        )
        with conn.begin():
            result = conn.execute(delete(_PROCESSED).where(key.in_(batch)))
        return int(result.rowcount)

    return rule


def prune(engine: Engine, rules: dict[str, Rule], batch: int) -> Pruned:
    """Run each rule in batches of `batch` until it finds less than a batch; one replica at
    a time per schema on PostgreSQL (the others find the lock taken and do nothing)."""
    deleted = dict.fromkeys(rules, 0)
    with engine.connect() as conn:
        key: int | None = None
        if not is_sqlite(engine):
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
            key = advisory_key(f"prune:{schema}")
            locked = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            conn.commit()
            if not locked:
                return Pruned(deleted)
        try:
            for table, rule in rules.items():
                while True:
                    gone = rule(conn, batch)
                    deleted[table] += gone
                    if gone < batch:
                        break
        finally:
            if key is not None:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
    return Pruned(deleted)


def _parse_time(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def oldest_dead_letter(redis: aioredis.Redis, streams: Iterable[str]) -> datetime | None:
    """The time of the oldest event waiting in these streams' dead-letter streams.

    A replayed dead letter comes back with its event id, and every group that had applied it
    must still find that id among its processed events. The event's own `time` is at or
    before any group applied it; the dead-lettering time is a fallback for an entry without.
    """
    oldest: datetime | None = None
    for stream in streams:
        key = dlq_stream(stream)
        start = "-"
        while True:
            entries: Any = await redis.xrange(key, min=start, count=500)
            for entry_id, fields in entries:
                text_fields = {_text(k): _text(v) for k, v in fields.items()}
                moment = _parse_time(text_fields.get("time", "")) or _parse_time(
                    text_fields.get("dlq_at", "")
                )
                if moment is None:  # an unreadable letter: its stream id's time is certain
                    moment = datetime.fromtimestamp(int(_text(entry_id).split("-")[0]) / 1000, UTC)
                oldest = moment if oldest is None else min(oldest, moment)
            if len(entries) < 500:
                break
            start = "(" + _text(entries[-1][0])
    return oldest


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class EventRecordPruning:
    """The periodic round of one service: its outbox, its processed-event ids and any
    tables the service adds (notify's delivery log), in batches."""

    engine: Engine
    redis: aioredis.Redis
    # The streams whose events this service applies (their dead letters hold ids back).
    consumed: Sequence[str]
    replay_hours: float
    processed_hours: float
    batch: int
    extra: list[Callable[[datetime], dict[str, Rule]]]

    async def once(self) -> Pruned:
        now = utcnow()
        # Redis not answering raises here: the round is skipped, nothing pruned blindly.
        held_back = await oldest_dead_letter(self.redis, self.consumed)
        processed_before = now - timedelta(hours=self.processed_hours)
        if held_back is not None:
            processed_before = min(processed_before, held_back)
        rules: dict[str, Rule] = {
            "outbox": published_outbox_rule(now - timedelta(hours=self.replay_hours)),
            "processed_events": processed_events_rule(processed_before),
        }
        for more in self.extra:
            rules.update(more(now))
        return await asyncio.to_thread(prune, self.engine, rules, self.batch)


def log_pruned(pruned: Pruned) -> None:
    if pruned:
        done = ", ".join(f"{table} {n}" for table, n in pruned.rows.items() if n)
        log.info("pruned: %s", done)
