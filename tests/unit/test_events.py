"""The event envelope and the published AsyncAPI document."""

from __future__ import annotations

import json
from pathlib import Path

from shared.events import EVENT_SCHEMAS, CloudEvent, asyncapi_document

ROOT = Path(__file__).resolve().parents[2]


def test_an_event_survives_the_trip_through_plain_stream_fields() -> None:
    event = CloudEvent(source="test", type="case.assigned", subject="c1", data={"a": [1, "x"]})
    fields = event.to_fields()
    assert all(isinstance(v, str) for v in fields.values())
    assert json.loads(fields["data"]) == {"a": [1, "x"]}
    assert CloudEvent.from_fields(fields) == event


def test_the_committed_asyncapi_document_describes_every_event() -> None:
    committed = json.loads((ROOT / "docs" / "asyncapi.json").read_text())
    assert committed == json.loads(json.dumps(asyncapi_document())), (
        "docs/asyncapi.json is stale: run `make asyncapi`"
    )
    names = {m["name"] for m in committed["components"]["messages"].values()}
    assert names == set(EVENT_SCHEMAS)
