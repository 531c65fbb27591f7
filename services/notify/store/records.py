"""The recording of finished attempts: the delivery log, each delivery's next step, and
the endpoints' health, for many attempts in one transaction of a fixed number of statements.

The worker decides what follows each attempt (`worker.py`, with `domain/retry.py` and
`domain/health.py`); these are the statements it runs, in this order, in one transaction:
`lock_deliveries`, `endpoint_health`, then `write_health`, `write_results` and
`has_successor`. The deliveries are locked first, in id order, as every transaction that
locks several does (recover, cancelling an endpoint's): no deadlock cycle with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, tuple_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session

from services.notify.domain.health import EndpointHealth
from services.notify.store.queries import disable_endpoint
from services.notify.store.tables import (
    ATTEMPTS,
    DELIVERIES,
    ENDPOINTS,
    PENDING,
    SUCCEEDED,
    WebhookEndpoint,
)


@dataclass(frozen=True)
class AttemptResult:
    """One finished attempt as it is written: its log row and its delivery's new state."""

    delivery_id: str
    number: int
    round_attempt: int
    attempted_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    # The attempt's outcome in the log (succeeded, retrying, failed, endpoint_disabled).
    outcome: str
    # The delivery's status after it, and its next attempt (None when finished).
    status: str
    next_attempt_at: datetime | None


def lock_deliveries(session: Session, delivery_ids: Iterable[str]) -> dict[str, bool]:
    """Lock the deliveries in id order; whether each has succeeded before (for the latency)."""
    ids = sorted(delivery_ids)
    return {i: at is not None for i, at in session.execute(LOCK_RECORDED, {"ids": ids})}


def endpoint_health(session: Session, endpoint_ids: Iterable[str]) -> dict[str, EndpointHealth]:
    ids = sorted(endpoint_ids)
    return {
        i: EndpointHealth(status, failing_since)
        for i, status, failing_since in session.execute(HEALTH, {"ids": ids})
    }


def write_health(session: Session, health: Mapping[str, EndpointHealth], now: datetime) -> None:
    """Write the endpoints whose health changed (not every endpoint on every success);
    one that must be disabled goes through `disable_endpoint`, which also stops what still
    waits to go to it."""
    changed = []
    for endpoint_id, h in sorted(health.items()):
        if h.disable_reason is not None:
            endpoint = session.get(WebhookEndpoint, endpoint_id)
            assert endpoint is not None
            endpoint.failing_since = h.failing_since
            disable_endpoint(session, endpoint, h.disable_reason, now)
        elif h.streak_changed:
            changed.append({"b_id": endpoint_id, "b_failing_since": h.failing_since})
    if changed:
        session.execute(
            update(ENDPOINTS)
            .where(ENDPOINTS.c.id == bindparam("b_id"))
            .values(failing_since=bindparam("b_failing_since"), updated_at=now),
            changed,
        )


def write_results(session: Session, results: list[AttemptResult], now: datetime) -> None:
    """Each delivery's new state (its lease given back), then the attempts' log rows."""
    deliveries = [
        {
            "b_id": r.delivery_id,
            "b_status": r.status,
            "b_succeeded_at": now if r.status == SUCCEEDED else None,
            "b_attempt_count": r.number,
            "b_round_attempts": r.round_attempt,
            "b_next_attempt_at": r.next_attempt_at,
            "b_last_status_code": r.status_code,
            "b_last_error": r.error,
            "b_now": now,
        }
        for r in results
    ]
    attempts = [
        {
            "delivery_id": r.delivery_id,
            "number": r.number,
            "attempted_at": r.attempted_at,
            "status_code": r.status_code,
            "duration_ms": r.duration_ms,
            "error": r.error,
            "outcome": r.outcome,
            "next_retry_at": r.next_attempt_at,
        }
        for r in results
    ]
    session.execute(RECORD_DELIVERY, deliveries)
    session.execute(insert(ATTEMPTS), attempts)


def has_successor(session: Session, finished: Iterable[tuple[str, str]]) -> bool:
    """Whether a delivery still waits behind one of these (endpoint, application) pairs,
    which the end of the one before it may have made due."""
    pairs = sorted(finished)
    return bool(pairs) and session.execute(SUCCESSOR, {"pairs": pairs}).first() is not None


# Built once, on the tables; lists of ids are bound as expanding parameters.
_IDS: Any = bindparam("ids", expanding=True)
LOCK_RECORDED = (
    sa_select(DELIVERIES.c.id, DELIVERIES.c.succeeded_at)
    .where(DELIVERIES.c.id.in_(_IDS))
    .order_by(DELIVERIES.c.id)
    .with_for_update()
)
HEALTH = sa_select(ENDPOINTS.c.id, ENDPOINTS.c.status, ENDPOINTS.c.failing_since).where(
    ENDPOINTS.c.id.in_(_IDS)
)
# Is a delivery still waiting behind one of these (endpoint, application) pairs?
SUCCESSOR = (
    sa_select(DELIVERIES.c.id)
    .where(
        DELIVERIES.c.status == PENDING,
        tuple_(DELIVERIES.c.endpoint_id, DELIVERIES.c.application_id).in_(
            bindparam("pairs", expanding=True)
        ),
    )
    .limit(1)
)
# One attempt's result on its delivery; executed for many at once. The lease is given back.
RECORD_DELIVERY = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        succeeded_at=func.coalesce(
            DELIVERIES.c.succeeded_at,
            bindparam("b_succeeded_at", type_=DELIVERIES.c.succeeded_at.type),
        ),
        attempt_count=bindparam("b_attempt_count"),
        round_attempts=bindparam("b_round_attempts"),
        next_attempt_at=bindparam("b_next_attempt_at"),
        last_status_code=bindparam("b_last_status_code"),
        last_error=bindparam("b_last_error"),
        lease_until=None,
        lease_owner=None,
        updated_at=bindparam("b_now"),
    )
)
