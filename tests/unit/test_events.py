"""The event envelope: CloudEvents as plain stream fields."""

from __future__ import annotations

import json

from shared.events import CloudEvent


def test_an_event_survives_the_trip_through_plain_stream_fields() -> None:
    event = CloudEvent(source="test", type="case.assigned", subject="c1", data={"a": [1, "x"]})
    fields = event.to_fields()
    assert all(isinstance(v, str) for v in fields.values())
    assert json.loads(fields["data"]) == {"a": [1, "x"]}
    assert CloudEvent.from_fields(fields) == event
