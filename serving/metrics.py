"""Prometheus metrics of one server, in a registry of its own.

The request figures already live in each deployment's
:class:`~pilothouse.serving.monitoring.RequestStats`; counting them a second time in
``prometheus_client`` objects would double the work on the request path. So a
collector reads them at scrape time instead, as the agent does for its
gauges. Only rare events (model loads) use ordinary counters.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from pilothouse.serving.deployments import DeploymentRegistry
from pilothouse.serving.monitoring import LATENCY_BUCKETS


class ServerMetrics:
    """The server's registry: scrape-time request figures plus model-load counters."""

    def __init__(self, deployments: DeploymentRegistry) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.loads = Counter(
            "pilothouse_serving_model_changes",
            "Deployment loads and replacements, by action and result.",
            ["action", "result"],
            registry=self.registry,
        )
        self.registry.register(_Deployments(deployments))
        deployments.on_load = lambda action, ok: self.loads.labels(
            action, "succeeded" if ok else "failed"
        ).inc()


class _Deployments(Collector):
    def __init__(self, deployments: DeploymentRegistry) -> None:
        self._deployments = deployments

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "pilothouse_serving_requests",
            "Prediction requests, by deployment.",
            labels=["deployment"],
        )
        errors = CounterMetricFamily(
            "pilothouse_serving_request_errors",
            "Failed prediction requests, by deployment and kind (client: 4xx, server: 5xx).",
            labels=["deployment", "kind"],
        )
        rows = CounterMetricFamily(
            "pilothouse_serving_rows", "Rows predicted, by deployment.", labels=["deployment"]
        )
        latency = HistogramMetricFamily(
            "pilothouse_serving_request_duration_seconds",
            "Time from request body to answer, by deployment.",
            labels=["deployment"],
        )
        models = GaugeMetricFamily(
            "pilothouse_serving_model_info",
            "Models loaded, by deployment, package and role (champion or challenger).",
            labels=["deployment", "model_package_id", "role"],
        )
        drift = GaugeMetricFamily(
            "pilothouse_serving_feature_psi",
            "Population stability index of an input feature against the package baseline.",
            labels=["deployment", "feature"],
        )
        prediction_drift = GaugeMetricFamily(
            "pilothouse_serving_prediction_psi",
            "Population stability index of the predictions against the package baseline.",
            labels=["deployment"],
        )
        for dep in self._deployments.all():
            stats = dep.stats
            requests.add_metric([dep.id], stats.requests)
            errors.add_metric([dep.id, "client"], stats.client_errors)
            errors.add_metric([dep.id, "server"], stats.server_errors)
            rows.add_metric([dep.id], stats.rows)
            cumulative, buckets = 0, []
            for bound, count in zip((*LATENCY_BUCKETS, "+Inf"), stats.latency_counts, strict=True):
                cumulative += count
                buckets.append((str(bound), cumulative))
            latency.add_metric([dep.id], buckets, stats.latency_sum)
            models.add_metric([dep.id, dep.champion.package_id, "champion"], 1)
            for challenger in dep.challengers:
                models.add_metric([dep.id, challenger.package_id, "challenger"], 1)
            per_feature, pred = dep.champion.monitor.drift()
            for feature, value in per_feature.items():
                drift.add_metric([dep.id, feature], value)
            if pred is not None:
                prediction_drift.add_metric([dep.id], pred)
        yield from (requests, errors, rows, latency, models, drift, prediction_drift)
