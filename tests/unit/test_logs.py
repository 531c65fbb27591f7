"""The log format: JSON lines with the ids bound while an event is handled, or plain text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from shared import logs
from shared.config import CommonSettings
from shared.events import CloudEvent


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    before, level = root.handlers[:], root.level
    out = io.StringIO()
    yield out
    root.handlers[:] = before
    root.setLevel(level)


def _configure(fmt: str, out: io.StringIO) -> None:
    settings = CommonSettings(REE_LOG_FORMAT=fmt)  # type: ignore[call-arg]
    logs.configure("review", "INFO", settings.log_format)
    logging.getLogger().handlers[0].setStream(out)  # type: ignore[attr-defined]


def test_json_lines_carry_the_event_its_application_and_the_trace(captured: io.StringIO) -> None:
    _configure("json", captured)
    event = CloudEvent(
        source="intake",
        type="application.submitted",
        subject="app-1",
        data={"application_id": "app-1", "case_id": "case-9", "note": "ignored"},
    )
    span = TracerProvider().get_tracer("test").start_span("handling")
    with trace.use_span(span, end_on_exit=True), logs.about(event):
        logging.getLogger("services.review").warning('Größe "quoted"\nsecond line')
    logging.getLogger("services.review").info("after")

    first, second = [json.loads(line) for line in captured.getvalue().splitlines()]
    context = span.get_span_context()
    assert first["message"] == 'Größe "quoted"\nsecond line'  # one line, escaped
    assert first["level"] == "WARNING" and first["service"] == "review"
    assert first["event_id"] == event.id and first["event_type"] == "application.submitted"
    assert first["application_id"] == "app-1" and first["case_id"] == "case-9"
    assert "note" not in first
    assert first["trace_id"] == format(context.trace_id, "032x")
    assert first["span_id"] == format(context.span_id, "016x")
    # Outside the event and the span, nothing of them remains.
    assert second["message"] == "after"
    assert not {"event_id", "application_id", "trace_id"} & second.keys()


def test_text_lines_are_plain_and_exceptions_stay_in_the_json_line(
    captured: io.StringIO,
) -> None:
    _configure("text", captured)
    logging.getLogger("x").warning("plain words")
    text = captured.getvalue()
    assert "review WARNING x: plain words" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)

    captured.seek(0)
    captured.truncate()
    _configure("json", captured)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("failed")
    [line] = captured.getvalue().splitlines()
    assert "ValueError: boom" in json.loads(line)["exception"]
