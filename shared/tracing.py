"""Traces: a span per request and per event handled, one trace per application's journey.

FastAPI makes the requests' spans itself (`REQUEST_TELEMETRY`); this module installs the
provider they go to, and makes the spans of the events.

OpenTelemetry, exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, and nothing at all otherwise: with no endpoint
no tracer provider is installed, so the API's spans are non-recording and cost next to nothing.

The trace context travels in the events themselves, as the CloudEvents distributed-tracing
extension's `traceparent` attribute (W3C Trace Context): the outbox stamps each event with
the span it was written in (a request's, or the handler's of the event that caused it), and
a consumer handles each event in a span whose parent that is. Notify keeps the context of
the event a webhook was built from, so the sending of the webhook joins the same trace: one
application is one trace from `POST /v1/applications` to the webhook.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

ENDPOINT_SETTINGS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

# What FastAPI's own telemetry does (`FastAPI(telemetry=...)`): a server span per request,
# continuing a caller's `traceparent`, with spans for dependency solving and the endpoint.
# Not the health checks and scrapes, which would bury the journeys; no metrics (Prometheus
# has them: shared/metrics.py) and no OpenTelemetry logs (the JSON lines are: shared/logs.py).
_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
REQUEST_TELEMETRY: TelemetryConfig = {
    "tracing": True,
    "metrics": False,
    "logs": False,
    "exclude": lambda scope: scope.get("path") in _PROBES,
}

_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("reechannel")
_provider: Any = None


def export_endpoint(environ: Mapping[str, str] = os.environ) -> str | None:
    """Where spans go, or None: tracing is off."""
    for name in ENDPOINT_SETTINGS:
        if environ.get(name):
            return environ[name]
    return None


def configure(service_name: str) -> bool:
    """Install a provider exporting this process's spans over OTLP, if an endpoint is set.

    The exporter reads the standard `OTEL_EXPORTER_OTLP_*` settings itself (endpoint,
    headers, timeout); spans leave in batches (`OTEL_BSP_*`), off the request path.
    """
    global _provider
    if _provider is not None or export_endpoint() is None:
        return _provider is not None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    return True


def enabled() -> bool:
    return _provider is not None


def shutdown() -> None:
    """Send what is still buffered (the process is stopping)."""
    if _provider is not None:
        _provider.shutdown()


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the span in progress, or None outside any recorded span."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def _parent(traceparent: str | None) -> otel_context.Context | None:
    if not traceparent:
        return None
    return _propagator.extract({"traceparent": traceparent})


@contextlib.contextmanager
def span(
    name: str,
    *,
    parent: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A span, child of `parent` (a traceparent) if given, else of the current span."""
    with _tracer.start_as_current_span(
        name, context=_parent(parent), kind=kind, attributes=dict(attributes or {})
    ) as current:
        yield current


def handling(event: Any, stream: str, group: str) -> contextlib.AbstractContextManager[Span]:
    """The span of one event handled by one consumer group, in the event's trace."""
    return span(
        f"{event.type} process",
        parent=event.traceparent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "redis",
            "messaging.operation.type": "process",
            "messaging.destination.name": stream,
            "messaging.consumer.group.name": group,
            "messaging.message.id": event.id,
            "cloudevents.event_id": event.id,
            "cloudevents.event_type": event.type,
            "cloudevents.event_subject": event.subject,
            "cloudevents.event_source": event.source,
        },
    )


def answered(current: Span, status_code: int | None, error: str | None) -> None:
    """Record what an outgoing HTTP request got: its status, or why there was none."""
    if status_code is not None:
        current.set_attribute("http.response.status_code", status_code)
    if error is not None or status_code is None or status_code >= 400:
        current.set_status(Status(StatusCode.ERROR, error or f"HTTP {status_code}"))


def trace_ids() -> tuple[str, str] | None:
    """The current trace and span ids as hex, for the logs; None outside a recorded span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
