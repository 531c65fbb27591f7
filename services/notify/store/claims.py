"""The delivery worker's claim: due deliveries taken for one worker under a lease.

A delivery is due when its `next_attempt_at` has passed, its lease is free, no earlier
delivery of the same application to the same endpoint is still pending, and no earlier
event of that application still waits in the streams (the backlog, `backlog.py`). Due
deliveries are claimed many at a time: one SELECT … FOR UPDATE SKIP LOCKED (PostgreSQL)
joined with their endpoints and messages, then one UPDATE … RETURNING of the leases, so
replicas share the work and one attempt is made by one worker. A worker that dies
mid-attempt leaves a lease that expires, and another worker takes the delivery over.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    and_,
    any_,
    bindparam,
    false,
    func,
    or_,
    type_coerce,
    update,
)
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.sql.elements import BindParameter, ColumnElement, Grouping

from services.notify.backlog import Backlog
from services.notify.store.tables import (
    ACTIVE,
    CANCELLED,
    DELIVERIES,
    ENDPOINTS,
    MESSAGES,
    PENDING,
    signing_secrets,
)
from shared.db import IN_INDEX_ORDER, session_scope, utcnow


@dataclass(frozen=True)
class Job:
    """A claimed delivery with everything needed to send it, read in the claiming transaction."""

    delivery_id: str
    endpoint_id: str
    application_id: str | None
    webhook_id: str
    url: str
    secrets: tuple[str, ...]
    body: bytes
    attempt_number: int
    round_attempt: int
    event_time: datetime
    traceparent: str | None = None


def claim_due(
    engine: Engine, limit: int, backlog: Backlog, owner: str, lease: timedelta
) -> list[Job]:
    """Take up to `limit` due deliveries for `owner` until `lease` from now; what it must send.

    Due deliveries whose endpoint was disabled or deleted meanwhile are cancelled instead.
    """
    now = utcnow()
    dialect = engine.dialect
    with session_scope(engine) as session:
        chosen: list[Any] = []
        cancelled: list[str] = []
        due = due_query(backlog.complete, dialect.name)
        if dialect.name != "sqlite":
            # The claim walks the due index in order and stops at its limit, whatever the
            # planner's statistics say. They lag behind a burst (10,000 more pending rows
            # a few seconds later), and with too few rows expected the planner joined
            # every pending delivery with its endpoint and message and sorted them all
            # (60-100 ms and a sort spilled to disk, to send 32).
            session.execute(IN_INDEX_ORDER)
        wanted = {"due_now": now, "due_limit": limit, **_backlog_params(backlog, dialect)}
        for row in session.execute(due, wanted):
            if row.deleted_at is not None or row.endpoint_status != ACTIVE:
                cancelled.append(row.id)
            else:
                chosen.append(row)
        if cancelled:
            session.execute(CANCEL, {"ids": cancelled, "now": now})
        if not chosen:
            return []
        # The conditions again: on SQLite (no row locks) another worker may have been quicker.
        wanted = {
            "ids": [row.id for row in chosen],
            "now": now,
            "lease_until": now + lease,
            "owner": owner,
        }
        taken = set(session.execute(TAKE, wanted).scalars())
        return [_job(row, now) for row in chosen if row.id in taken]


def release(engine: Engine, delivery_id: str, owner: str) -> None:
    """Give a claimed delivery back now (its attempt was cut short), if `owner` still holds it."""
    with session_scope(engine) as session:
        session.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.lease_owner == owner)
            .values(lease_until=None, lease_owner=None)
        )


@functools.cache
def due_query(backlog_complete: bool, dialect: str) -> Any:
    """The claim's query, built once per shape and dialect (`due_now`, `due_limit` and the
    backlog's pairs, see `_backlog_params`, are bound)."""
    d, e, m = DELIVERIES, ENDPOINTS, MESSAGES
    now = bindparam("due_now", type_=d.c.next_attempt_at.type)
    earlier = d.alias("earlier")
    blocked_by_earlier = (
        sa_select(earlier.c.id)
        .where(
            earlier.c.endpoint_id == d.c.endpoint_id,
            earlier.c.application_id == d.c.application_id,
            earlier.c.status == PENDING,
            or_(
                earlier.c.event_time < d.c.event_time,
                and_(
                    earlier.c.event_time == d.c.event_time,
                    earlier.c.message_seq < d.c.message_seq,
                ),
            ),
        )
        .exists()
    )
    # Plain columns, not three ORM objects per row: a claim reads hundreds in a burst.
    query: Any = (
        sa_select(
            d.c.id,
            d.c.application_id,
            d.c.event_time,
            d.c.webhook_id,
            d.c.attempt_count,
            d.c.round_attempts,
            e.c.id.label("endpoint_id"),
            e.c.url,
            e.c.status.label("endpoint_status"),
            e.c.deleted_at,
            e.c.secret,
            e.c.previous_secret,
            e.c.previous_secret_expires_at,
            m.c.body,
            m.c.traceparent,
        )
        .join(e, e.c.id == d.c.endpoint_id)
        .join(m, m.c.seq == d.c.message_seq)
        .where(
            d.c.status == PENDING,
            d.c.next_attempt_at <= now,
            _lease_free(now),
            ~blocked_by_earlier,
        )
    )
    if backlog_complete:
        # Held back in the query, not after reading: the limit is then the free slots, and
        # no row is read (nor locked) only to be skipped. During a catch-up the backlog holds
        # up to a thousand applications, and a claim that read its limit plus one row per
        # held-back application read (and locked) a thousand rows to send thirty.
        query = query.where(~_held_back_by_backlog(dialect))
    else:
        query = query.where(d.c.application_id.is_(None))
    query = query.order_by(d.c.next_attempt_at).limit(bindparam("due_limit"))
    if dialect != "sqlite":
        query = query.with_for_update(skip_locked=True, of=d)
    return query


def _held_back_by_backlog(dialect: str) -> Any:
    """Whether a delivery's event is later than the earliest event of its application still
    in the streams (the backlog's pairs, bound by `_backlog_params`).

    PostgreSQL gets the pairs as two arrays, applications and their times, and looks the
    application up in them: with some 800 pairs a claim took 0.1-1.7 ms, where joining them as
    an unnested table took 10-38 ms. SQLite gets them as one JSON array of pairs.
    """
    d = DELIVERIES
    if dialect == "sqlite":
        pairs = func.json_each(bindparam("held")).table_valued("value", name="held")
        app, first = (func.json_extract(pairs.c.value, f"$[{i}]") for i in (0, 1))
        return sa_select(app).where(app == d.c.application_id, first < d.c.event_time).exists()
    apps = bindparam("held_apps", type_=ARRAY(d.c.application_id.type))
    times_type = ARRAY(d.c.event_time.type)
    times = type_coerce(Grouping(bindparam("held_times", type_=times_type)), times_type)
    earliest = times[func.array_position(apps, d.c.application_id)]
    later = and_(d.c.application_id == any_(apps), earliest < d.c.event_time)
    # No application (NULL) is never held back: coalesce, or NOT NULL would drop the row.
    return func.coalesce(later, false())


def _backlog_params(backlog: Backlog, dialect: Dialect) -> dict[str, Any]:
    """The backlog's pairs as the claim binds them for `_held_back_by_backlog`."""
    if not backlog.complete:
        return {}
    if dialect.name == "sqlite":
        # Times as the column stores them, so SQLite compares like with like.
        stored = DELIVERIES.c.event_time.type.dialect_impl(dialect).bind_processor(dialect)
        pairs = [[app, stored(time)] for app, time in backlog.earliest.items()]
        return {"held": json.dumps(pairs)}
    return {"held_apps": list(backlog.earliest), "held_times": list(backlog.earliest.values())}


def _job(row: Any, now: datetime) -> Job:
    """A claimed row of `due_query` as the attempt needs it."""
    return Job(
        delivery_id=row.id,
        endpoint_id=row.endpoint_id,
        application_id=row.application_id,
        webhook_id=row.webhook_id,
        url=row.url,
        secrets=tuple(
            signing_secrets(row.secret, row.previous_secret, row.previous_secret_expires_at, now)
        ),
        body=row.body.encode(),
        attempt_number=row.attempt_count + 1,
        round_attempt=row.round_attempts + 1,
        event_time=row.event_time,
        traceparent=row.traceparent,
    )


def _lease_free(now: datetime | BindParameter[Any]) -> ColumnElement[bool]:
    lease = DELIVERIES.c.lease_until
    return or_(lease.is_(None), lease < now)


# The hot statements, built once, on the tables (not the ORM classes, whose statements take
# the ORM's slower execution path); lists of ids are bound as expanding parameters.
_IDS: Any = bindparam("ids", expanding=True)
_NOW = bindparam("now", type_=DELIVERIES.c.updated_at.type)
CANCEL = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id.in_(_IDS), DELIVERIES.c.status == PENDING)
    .values(
        status=CANCELLED,
        next_attempt_at=None,
        lease_until=None,
        lease_owner=None,
        updated_at=_NOW,
    )
)
# A claim's lease, taken only where still free.
TAKE = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.id.in_(_IDS),
        DELIVERIES.c.status == PENDING,
        _lease_free(_NOW),
    )
    .values(
        lease_until=bindparam("lease_until", type_=DELIVERIES.c.lease_until.type),
        lease_owner=bindparam("owner"),
    )
    .returning(DELIVERIES.c.id)
)
