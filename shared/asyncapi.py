"""The AsyncAPI 3.0 document of both streams, generated from the event schemas."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from shared.events import (
    EVENT_SCHEMAS,
    EVENT_STREAMS,
    INTAKE_STREAM,
    REVIEW_STREAM,
    SCHEMA_VERSION,
    STREAM_CONSUMERS,
    STREAM_PRODUCERS,
    TRACEPARENT,
)

__all__ = ["asyncapi_document"]

REF = "#/components/schemas/{model}"

# The CloudEvents attributes, each a plain stream field beside `data` (ARCHITECTURE.md, events).
ENVELOPE: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0 attributes, stored as plain fields of the stream entry.",
    "required": ["specversion", "id", "source", "type", "subject", "time", "datacontenttype"],
    "properties": {
        "specversion": {"type": "string", "const": "1.0"},
        "id": {"type": "string", "description": "Unique; consumers de-duplicate on it."},
        "source": {"type": "string", "description": "The producing service."},
        "type": {"type": "string"},
        "subject": {"type": "string", "description": "The application or case id."},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"type": "string", "const": "application/json"},
        "schemaversion": {"type": "string", "const": SCHEMA_VERSION},
        "traceparent": {
            "type": "string",
            "pattern": TRACEPARENT,
            "description": "CloudEvents distributed-tracing extension: the W3C trace context "
            "of the span the event was written in; present while tracing is on.",
        },
    },
}


def _message_name(event_type: str) -> str:
    return event_type.replace(".", "_")


def asyncapi_document() -> dict[str, Any]:
    """Every schema once under components (nested models by reference), every message on its
    stream, and a send operation for each producer and a receive operation for each consumer."""
    keyed, schemas = models_json_schema(
        [(schema, "validation") for schema in EVENT_SCHEMAS.values()], ref_template=REF
    )
    components_schemas: dict[str, Any] = dict(schemas.get("$defs", {}))
    components_schemas["CloudEventEnvelope"] = ENVELOPE
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {
        stream: {
            "address": stream,
            "description": f"Written by {STREAM_PRODUCERS[stream]} through its outbox.",
            "messages": {},
        }
        for stream in (INTAKE_STREAM, REVIEW_STREAM)
    }
    for event_type, schema in EVENT_SCHEMAS.items():
        name = _message_name(event_type)
        messages[name] = {
            "name": event_type,
            "title": event_type,
            "contentType": "application/json",
            "summary": (schema.__doc__ or event_type).strip().splitlines()[0],
            "headers": {"$ref": "#/components/schemas/CloudEventEnvelope"},
            "payload": keyed[(schema, "validation")],
        }
        stream = EVENT_STREAMS[event_type]
        channels[stream]["messages"][name] = {"$ref": f"#/components/messages/{name}"}
    operations: dict[str, Any] = {}
    for stream, channel in channels.items():
        refs = [{"$ref": f"#/channels/{stream}/messages/{m}"} for m in channel["messages"]]
        producer = STREAM_PRODUCERS[stream]
        operations[f"{producer}_sends_{_message_name(stream)}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{stream}"},
            "summary": f"{producer} relays its outbox to {stream} in commit order.",
            "messages": refs,
        }
        for consumer in STREAM_CONSUMERS[stream]:
            operations[f"{consumer}_receives_{_message_name(stream)}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{stream}"},
                "summary": f"{consumer}'s consumer group reads {stream}.",
                "messages": refs,
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "REE Channel events",
            "version": SCHEMA_VERSION,
            "description": (
                "CloudEvents 1.0 records on Redis streams. Each attribute is a plain stream "
                "field; `data` holds the JSON payload described here."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": components_schemas, "messages": messages},
    }
