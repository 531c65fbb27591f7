"""Operator's view of dead-letter streams: list what failed and re-inject it after a fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from shared.consumer import dlq_stream
from shared.events import INTAKE_STREAM, REVIEW_STREAM

STREAMS = (INTAKE_STREAM, REVIEW_STREAM)


@dataclass(frozen=True)
class DeadLetter:
    dlq_id: str
    stream: str
    event_id: str
    event_type: str
    group: str
    deliveries: int
    error: str
    at: str

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _letter(dlq_id: str, stream: str, fields: dict[str, str]) -> DeadLetter:
    return DeadLetter(
        dlq_id=dlq_id,
        stream=stream,
        event_id=fields.get("id", ""),
        event_type=fields.get("type", ""),
        group=fields.get("dlq_group", ""),
        deliveries=int(fields.get("dlq_deliveries", "0")),
        error=fields.get("dlq_error", ""),
        at=fields.get("dlq_at", ""),
    )


def list_dead_letters(client: redis.Redis, prefix: str, limit: int = 100) -> list[DeadLetter]:
    letters = []
    for stream in STREAMS:
        entries: Any = client.xrange(dlq_stream(prefix + stream), count=limit)
        for dlq_id, fields in entries:
            letters.append(_letter(dlq_id, stream, fields))
    return letters


def replay(client: redis.Redis, prefix: str, ids: list[str] | None) -> list[DeadLetter]:
    """Put dead letters back on their stream (all, or the given DLQ entry ids) and remove them.

    The event keeps its id, so a consumer that did apply it meanwhile skips it; the group
    that failed applies it now, if the cause was fixed.
    """
    done = []
    for stream in STREAMS:
        key = dlq_stream(prefix + stream)
        entries: Any = client.xrange(key)
        for dlq_id, fields in entries:
            if ids is not None and dlq_id not in ids:
                continue
            original = {k: v for k, v in fields.items() if not k.startswith("dlq_")}
            pipe = client.pipeline(transaction=True)
            pipe.xadd(prefix + stream, original)
            pipe.xdel(key, dlq_id)
            pipe.execute()
            done.append(_letter(dlq_id, stream, fields))
    return done
