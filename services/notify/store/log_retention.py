"""The delivery log's retention: messages, deliveries and attempts older than
`REE_DELIVERY_LOG_DAYS` leave the database, in batches (shared/pruning.py runs them).

A message goes only when none of its deliveries is still pending: a retry that is due
must find its message, whatever its age. With it go its deliveries and their attempts,
children first (the foreign keys).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.engine import Connection

from services.notify.store.tables import PENDING, Attempt, Delivery, Message
from shared.pruning import Index, Rule

# The index the delivery log's deletes walk (notify's pruning migration creates it).
MESSAGES_INDEX: Index = ("webhook_messages", "ix_webhook_messages_created", ["created_at"])

_MESSAGES: Any = Message.__table__  # type: ignore[attr-defined]
_DELIVERIES: Any = Delivery.__table__  # type: ignore[attr-defined]
_ATTEMPTS: Any = Attempt.__table__  # type: ignore[attr-defined]


def delivery_log_rule(before: datetime) -> Rule:
    """Up to `limit` messages created before `before` with no pending delivery, and
    everything that hangs on them (walks ix_webhook_messages_created)."""

    def rule(conn: Connection, limit: int) -> int:
        pending = exists().where(
            _DELIVERIES.c.message_seq == _MESSAGES.c.seq, _DELIVERIES.c.status == PENDING
        )
        with conn.begin():
            seqs = list(
                conn.execute(
                    select(_MESSAGES.c.seq)
                    .where(_MESSAGES.c.created_at < before, ~pending)
                    .order_by(_MESSAGES.c.created_at)
                    .limit(limit)
                ).scalars()
            )
            if not seqs:
                return 0
            deliveries = select(_DELIVERIES.c.id).where(_DELIVERIES.c.message_seq.in_(seqs))
            conn.execute(delete(_ATTEMPTS).where(_ATTEMPTS.c.delivery_id.in_(deliveries)))
            conn.execute(delete(_DELIVERIES).where(_DELIVERIES.c.message_seq.in_(seqs)))
            conn.execute(delete(_MESSAGES).where(_MESSAGES.c.seq.in_(seqs)))
        return len(seqs)

    return rule


def delivery_log_rules(days: float) -> Callable[[datetime], dict[str, Rule]]:
    """The rules of one pruning round, whose cutoff is `days` before its start."""

    def rules(now: datetime) -> dict[str, Rule]:
        return {"webhook_messages": delivery_log_rule(now - timedelta(days=days))}

    return rules
