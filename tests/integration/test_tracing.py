"""One application is one trace: intake's request, review's and notify's handlers, the webhook.

The three services run as real processes exporting over OTLP/HTTP to a collector of the
test's own (a real HTTP server decoding the protobuf export requests), as they would to an
OpenTelemetry Collector; the test reads the spans it received.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.integration.notify_support import (
    Receiver,
    new_company,
    notify_env,
    register,
    running_receiver,
    wait_for,
)
from tests.support import Infra, ServiceProcess, sample_application

SERVER, CONSUMER, CLIENT = 2, 5, 3  # the protobuf's SpanKind numbers


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


@dataclass
class Collector:
    """An OTLP/HTTP trace receiver on a free loopback port."""

    spans: list[Span] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        found = []
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    found.append(
                        Span(
                            service=attributes.get("service.name", ""),
                            name=s.name,
                            kind=s.kind,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in s.attributes},
                        )
                    )
        with self.lock:
            self.spans.extend(found)

    def of_trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[Collector, str]]:
    collected = Collector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            collected.received(body)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield collected, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def traced(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory, collector: tuple[Collector, str]
) -> Iterator[tuple[Infra, dict[str, ServiceProcess]]]:
    """Intake, review and notify of a deployment of their own, each exporting its spans."""
    own = infra.isolated(tmp_path_factory.mktemp("traced"))
    env = notify_env(
        own,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector[1],
        OTEL_BSP_SCHEDULE_DELAY="100",
        REE_LOG_LEVEL="DEBUG",
        REE_LOG_FORMAT="json",
    )
    services = {name: ServiceProcess(name, env) for name in ("intake", "review", "notify")}
    for service in services.values():
        service.start(wait_ready=False)
    for service in services.values():
        service.wait_ready()
    yield own, services
    for service in services.values():
        service.stop()
    own.drop_schemas()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


def test_one_application_is_one_trace_from_its_submission_to_its_webhook(
    traced: tuple[Infra, dict[str, ServiceProcess]],
    collector: tuple[Collector, str],
    receiver: Receiver,
) -> None:
    own, services = traced
    collected = collector[0]
    company = new_company(own, "Traced Magnets GmbH")
    box = receiver.mailbox()
    with services["notify"].client(company["api_key"]) as notify:
        register(notify, box, ["application.received", "application.status_changed"])
    with services["intake"].client(company["api_key"]) as intake:
        submitted = intake.post(
            "/v1/applications", json=sample_application(), headers={"Idempotency-Key": "traced-1"}
        )
    assert submitted.status_code == 201, submitted.text

    def posted() -> Span | None:
        found = [
            s
            for s in collected.spans
            if s.service == "intake" and s.kind == SERVER and s.name == "POST /v1/applications"
        ]
        return found[0] if found else None

    root = wait_for(posted, "the span of POST /v1/applications")
    assert root.parent_id == ""
    assert root.attributes["http.response.status_code"] == 201

    def journey() -> list[Span] | None:
        spans = collected.of_trace(root.trace_id)
        sends = [s for s in spans if s.kind == CLIENT and s.name == "webhook send"]
        handled_by = {s.service for s in spans if s.kind == CONSUMER}
        # The webhook sent, and each service handled at least one event of the journey.
        return spans if sends and {"intake", "review", "notify"} <= handled_by else None

    try:
        spans = wait_for(journey, "the spans of the whole journey", timeout=60)
    except AssertionError as exc:
        seen = [(s.service, s.name, s.trace_id[:8], s.parent_id[:8]) for s in collected.spans]
        raise AssertionError(f"{exc}; the collector has {seen}") from None
    by_id = {s.span_id: s for s in spans}
    # Every span but the request's has its parent in the same trace: one tree, one root.
    assert [s for s in spans if s.parent_id not in by_id] == [root]

    review_opened = [
        s
        for s in spans
        if s.service == "review"
        and s.attributes.get("cloudevents.event_type") == "application.submitted"
    ]
    assert review_opened, [(s.service, s.name) for s in spans]
    assert by_id[review_opened[0].parent_id] == root  # written in the request's span

    # The webhook's attempt is a child of notify's handling of the event, itself a child of
    # the request that wrote it.
    [send] = [s for s in spans if s.name == "webhook send"]
    handled = by_id[send.parent_id]
    assert (handled.service, handled.kind) == ("notify", CONSUMER)
    assert handled.attributes["cloudevents.event_type"] == "application.submitted"
    assert by_id[handled.parent_id] == root
    assert send.attributes["http.response.status_code"] == 200
    # Intake handled review's answer (the case opened) in the same trace, under review's span.
    opened = [s for s in spans if s.service == "intake" and s.kind == CONSUMER]
    assert opened and all(by_id[s.parent_id].service == "review" for s in opened)


def test_the_logs_are_json_lines_carrying_the_event_case_and_trace_ids(
    traced: tuple[Infra, dict[str, ServiceProcess]],
    collector: tuple[Collector, str],
) -> None:
    own, services = traced
    company = new_company(own, "Logged Alloys SAS")
    with services["intake"].client(company["api_key"]) as intake:
        submitted = intake.post(
            "/v1/applications", json=sample_application(), headers={"Idempotency-Key": "logged-1"}
        )
    assert submitted.status_code == 201, submitted.text
    application_id = submitted.json()["id"]
    log = services["review"].log_path

    def logged() -> list[dict[str, Any]] | None:
        lines = [json.loads(line) for line in _lines(log)]
        about = [
            line
            for line in lines
            if line.get("application_id") == application_id
            and line.get("event_type") == "application.submitted"
        ]
        return lines if about else None

    lines = wait_for(logged, "a log line about the application's submission")
    assert all({"time", "level", "service", "logger", "message"} <= line.keys() for line in lines)
    about = [line for line in lines if line.get("application_id") == application_id]
    assert {line["service"] for line in about} == {"review"}
    assert all(line["event_id"] and len(line["trace_id"]) == 32 for line in about)
    # The trace id in the log is the trace of the application's request.
    traces = {s.trace_id for s in collector[0].spans if s.name == "POST /v1/applications"}
    assert {line["trace_id"] for line in about} <= traces

    # Intake, handling review's answer, logs the case's id beside the application's.
    def opened() -> list[dict[str, Any]] | None:
        lines = [json.loads(line) for line in _lines(services["intake"].log_path)]
        found = [
            line
            for line in lines
            if line.get("application_id") == application_id
            and line.get("event_type") == "case.opened"
        ]
        return found or None

    [line] = wait_for(opened, "intake's log line about the case opened")
    assert line["case_id"] and line["trace_id"] in traces


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]
