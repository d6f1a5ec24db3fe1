"""Prometheus metrics of one agent, in a registry of its own.

Each :class:`AgentMetrics` has its own ``CollectorRegistry`` so that several
agents embedded in one process (and tests) never share counters. Gauges whose
value lives elsewhere (queue depths, deployments by state) are read at scrape
time through callbacks instead of being updated on every change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class AgentMetrics:
    """The agent's counters, histograms and scrape-time gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.actions = Counter(
            "pilothouse_agent_actions",
            "Plugin actions finished, by action and result.",
            ["action", "result"],
            registry=self.registry,
        )
        self.action_duration = Histogram(
            "pilothouse_agent_action_duration_seconds",
            "Time an action took, retries included.",
            ["action"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.task_restarts = Counter(
            "pilothouse_agent_task_restarts",
            "Restarts of supervised tasks after a failure.",
            ["task"],
            registry=self.registry,
        )
        self.superseded = Counter(
            "pilothouse_agent_changes_superseded",
            "Pending changes dropped because a newer generation arrived first.",
            registry=self.registry,
        )
        self.events = Counter(
            "pilothouse_agent_events",
            "Events emitted, by status.",
            ["status"],
            registry=self.registry,
        )
        # Labelled children looked up once: ``labels()`` validates its arguments at every
        # call (about 2 us), and the hot paths count several times per action.
        self._event_counts: dict[str, Counter] = {}
        self._action_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def count_event(self, status: str) -> None:
        """Count one event emitted with ``status``."""
        child = self._event_counts.get(status)
        if child is None:
            child = self._event_counts[status] = self.events.labels(status)
        child.inc()

    def action_finished(self, action: str, result: str, seconds: float) -> None:
        """Count one finished action and observe how long it took."""
        children = self._action_children.get((action, result))
        if children is None:
            children = self._action_children[action, result] = (
                self.actions.labels(action, result),
                self.action_duration.labels(action),
            )
        children[0].inc()
        children[1].observe(seconds)

    def watch(
        self,
        queue_depths: Callable[[], Mapping[str, int]],
        deployments_by_state: Callable[[], Mapping[str, int]],
    ) -> None:
        """Register the scrape-time gauges, reading their values from the callbacks."""
        self.registry.register(_Gauges(queue_depths, deployments_by_state))


class _Gauges(Collector):
    def __init__(
        self,
        queue_depths: Callable[[], Mapping[str, int]],
        deployments_by_state: Callable[[], Mapping[str, int]],
    ) -> None:
        self._queues = queue_depths
        self._states = deployments_by_state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        queues = GaugeMetricFamily(
            "pilothouse_agent_queue_depth", "Items waiting in the agent's queues.", labels=["queue"]
        )
        for name, depth in self._queues().items():
            queues.add_metric([name], depth)
        yield queues
        states = GaugeMetricFamily(
            "pilothouse_agent_deployments", "Deployments by observed state.", labels=["state"]
        )
        for state, count in self._states().items():
            states.add_metric([state], count)
        yield states
