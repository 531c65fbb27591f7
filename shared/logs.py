"""Logs: one JSON object a line, with the ids of the application, case, event and trace.

`REE_LOG_FORMAT=json` (the default) writes each record as a JSON line: time, level, service,
logger, message, the exception if any, the trace and span ids of the span in progress
(shared/tracing.py), and the ids bound by `about(event)` while an event is handled:
`event_id`, `event_type` and the `application_id` / `case_id` the event names. `text` writes
the same records as plain lines, for a person reading a terminal.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from shared import tracing

_bound: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "ree_log_ids", default=MappingProxyType({})
)

# What an event's data may name, copied into the lines logged while it is handled.
_EVENT_IDS = ("application_id", "case_id", "licence_id", "list_id", "company_id")


@contextlib.contextmanager
def bound(**ids: str | None) -> Iterator[None]:
    """Add these ids to every line logged in this context."""
    token = _bound.set({**_bound.get(), **{k: v for k, v in ids.items() if v}})
    try:
        yield
    finally:
        _bound.reset(token)


def about(event: Any) -> contextlib.AbstractContextManager[None]:
    """The ids of one event (and of what its data names) on the lines logged meanwhile."""
    data = event.data if isinstance(event.data, dict) else {}
    named = {k: data[k] for k in _EVENT_IDS if isinstance(data.get(k), str)}
    return bound(event_id=event.id, event_type=event.type, subject=event.subject, **named)


class JsonLines(logging.Formatter):
    """A record as one JSON object on one line."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ids = tracing.trace_ids()
        if ids is not None:
            line["trace_id"], line["span_id"] = ids
        line.update(_bound.get())
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(service: str, level: str, fmt: str) -> None:
    """Send every logger's records (uvicorn's, FastStream's and Python's warnings too) to
    stderr in `fmt`."""
    logging.captureWarnings(True)
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonLines(service))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
