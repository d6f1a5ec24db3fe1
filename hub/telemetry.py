"""Prometheus metrics of one hub, in a registry of its own.

Each :class:`HubMetrics` owns its ``CollectorRegistry``, so several hubs in one
process (tests, ``pilothouse up``) never share counters. Routes are labelled by
their path template (``/api/v1/deployments/{id}``), never by the concrete path,
so label cardinality stays bounded.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60)


class HubMetrics:
    """The hub's counters, histograms and gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "pilothouse_hub_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pilothouse_hub_request_duration_seconds",
            "Time to answer a request (a watch stream: its whole life), by route template.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.events_ingested = Counter(
            "pilothouse_hub_events_ingested",
            "Events stored by POST /events (duplicates not counted).",
            registry=self.registry,
        )
        self.events_duplicate = Counter(
            "pilothouse_hub_events_duplicate",
            "Events posted again and ignored (ingest is idempotent by id).",
            registry=self.registry,
        )
        self.events_exported = Counter(
            "pilothouse_hub_events_exported",
            "Events written by GET /events/export.",
            registry=self.registry,
        )
        self.events_purged = Counter(
            "pilothouse_hub_events_purged",
            "Events removed by the retention purge.",
            registry=self.registry,
        )
        self.notification_attempts = Counter(
            "pilothouse_hub_notification_attempts",
            "Attempts at sending a notification, by outcome (delivered, retry, failed).",
            ["outcome"],
            registry=self.registry,
        )
        self.sse_clients = Gauge(
            "pilothouse_hub_sse_clients",
            "Watch streams (SSE) open now.",
            registry=self.registry,
        )
        self.lease_held = Gauge(
            "pilothouse_hub_lease_held",
            "1 while this replica holds the lease to run the background work (always on SQLite).",
            registry=self.registry,
        )
