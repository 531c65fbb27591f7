"""Prometheus metrics that every service exposes at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Histogram(
    "reechannel_http_request_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENTS_CONSUMED = Counter(
    "reechannel_events_consumed_total", "Events consumed", ["stream", "group", "outcome"]
)
EVENTS_DEAD_LETTERED = Counter(
    "reechannel_events_dead_lettered_total", "Events moved to a dead-letter stream", ["stream"]
)
OUTBOX_RELAYED = Counter("reechannel_outbox_relayed_total", "Outbox rows published to Redis")
OUTBOX_LAG = Gauge(
    "reechannel_outbox_lag_seconds", "Age of the oldest outbox row in the last relayed batch"
)
CONSUMER_LAG = Gauge(
    "reechannel_consumer_lag", "Entries not yet delivered to the group", ["stream", "group"]
)
DLQ_SIZE = Gauge("reechannel_dlq_size", "Entries in the dead-letter stream", ["stream"])
WEBHOOK_DELIVERIES = Counter(
    "reechannel_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (succeeded, retrying, failed, endpoint_disabled)",
    ["outcome"],
)
WEBHOOK_LATENCY = Histogram(
    "reechannel_webhook_delivery_latency_seconds",
    "Time from an event to the first successful delivery of its webhook",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 36_000, 86_400, 172_800),
)
