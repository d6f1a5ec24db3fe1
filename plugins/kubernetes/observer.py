"""Status from watches: the PE's Deployments, Pods and Events, and findings pushed at once.

The :class:`Observer` owns one :class:`~pilothouse.plugins.kubernetes.watching.Watcher`
per kind and indexes what they deliver by deployment id. Every change
re-assesses the deployment it touches (:func:`~pilothouse.plugins.kubernetes.findings.assess`)
and, when its finding differs from the last one pushed, pushes it through
``ctx.report`` — with the failing container's last log lines — so the worker
knows within a second of the API server, not at its next health round.
While an action of the plugin's own is under way on a deployment (a rollout
it is watching, and may undo), nothing is pushed for it: the action's result
speaks, and the next change after it is pushed as usual.

Waiters (an action waiting for a rollout) are woken by every change
(:meth:`Observer.changed`), and read the same cache.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pilothouse.agent.errors import PluginError
from pilothouse.agent.plugin import DeploymentReport
from pilothouse.foundation.aio.backoff import Backoff
from pilothouse.plugins.kubernetes import findings, names
from pilothouse.plugins.kubernetes.api import Kube
from pilothouse.plugins.kubernetes.findings import Finding
from pilothouse.plugins.kubernetes.watching import Kind, Watcher

log = logging.getLogger("pilothouse.plugin.kubernetes")

DEPLOYMENTS = Kind("deployments", "apps", lambda k: k.apps.list_namespaced_deployment)
PODS = Kind("pods", "", lambda k: k.core.list_namespaced_pod)
EVENTS = Kind("events", "", lambda k: k.core.list_namespaced_event, selected=False)

Report = Callable[[DeploymentReport], None]
ToReport = Callable[[str, Finding, str], DeploymentReport]
"""Makes the report of (deployment id, finding, log tail)."""


class Observer:
    """The cache of the PE's objects, by deployment, and the findings pushed from it."""

    def __init__(
        self,
        kube: Kube,
        pe: str,
        *,
        backoff: Backoff,
        timeout_s: int,
        report: Report,
        to_report: ToReport,
        log_lines: int,
    ) -> None:
        selector = names.selector(pe)

        def make(kind: Kind) -> Watcher:
            return Watcher(
                kube, kind, selector, self._changed, backoff=backoff, timeout_s=timeout_s
            )

        self.deployments, self.pods, self.events = make(DEPLOYMENTS), make(PODS), make(EVENTS)
        self._kube = kube
        self._report = report
        self._to_report = to_report
        self._log_lines = log_lines
        self._change = asyncio.Event()
        self._pushed: dict[str, tuple[Any, ...]] = {}
        self.busy: set[str] = set()
        """Deployments with an action of the plugin under way: their findings are not pushed."""
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self.pushes = 0

    @property
    def watchers(self) -> tuple[Watcher, Watcher, Watcher]:
        """The three watches."""
        return self.deployments, self.pods, self.events

    async def synced(self) -> None:
        """Wait until every kind has been listed once."""
        await asyncio.gather(*(w.synced.wait() for w in self.watchers))

    async def changed(self) -> None:
        """Wait for the next change of any watched object."""
        await self._change.wait()

    # --- the cache, by deployment --------------------------------------------------------

    def deployment(self, deployment_id: str) -> dict[str, Any] | None:
        """The Deployment of ``deployment_id`` as last seen."""
        return self.deployments.objects.get(names.object_name(deployment_id))

    def deployment_ids(self) -> list[str]:
        """The ids of every Deployment of the PE."""
        return sorted(i for d in self.deployments.objects.values() if (i := deployment_id(d)))

    def pods_of(self, deployment_id: str) -> list[dict[str, Any]]:
        """The pods of ``deployment_id``, by name."""
        value = names.label_value(deployment_id)
        return [
            p
            for _, p in sorted(self.pods.objects.items())
            if (p.get("metadata") or {}).get("labels", {}).get(names.DEPLOYMENT) == value
        ]

    def warnings(self, pods: list[dict[str, Any]]) -> dict[str, str]:
        """The last Warning event's message per pod name."""
        wanted = {p["metadata"]["name"] for p in pods}
        last: dict[str, tuple[str, str]] = {}
        for event in self.events.objects.values():
            involved = event.get("involvedObject") or {}
            name = str(involved.get("name"))
            if event.get("type") == "Warning" and involved.get("kind") == "Pod" and name in wanted:
                stamp = str(event.get("lastTimestamp") or event.get("eventTime") or "")
                if name not in last or stamp >= last[name][0]:
                    last[name] = (stamp, str(event.get("message") or event.get("reason")))
        return {name: message for name, (_, message) in last.items()}

    def assess(self, deployment_id: str) -> Finding:
        """The finding of ``deployment_id`` from the cache."""
        pods = self.pods_of(deployment_id)
        return findings.assess(self.deployment(deployment_id), pods, self.warnings(pods))

    async def log_tail(self, finding: Finding) -> str:
        """The log tail of the container a failing finding names ("" if none or unreadable)."""
        if finding.pod is None or finding.container is None or self._log_lines == 0:
            return ""
        op = self._kube.op("get", "pods/log", "", finding.pod)
        try:
            text = await self._kube.raw(
                op,
                self._kube.core.read_namespaced_pod_log,
                finding.pod,
                self._kube.namespace,
                container=finding.container,
                tail_lines=self._log_lines,
                previous=finding.previous_logs,
            )
        except PluginError as exc:
            log.debug("no log for %s/%s: %s", finding.pod, finding.container, exc)
            return ""
        return text.decode(errors="replace").strip()

    # --- pushing findings -------------------------------------------------------------------

    async def push_findings(self) -> None:
        """The pusher: report each changed deployment's finding, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            for deployment_id in sorted(dirty):
                if deployment_id not in self.busy:
                    await self._push(deployment_id)

    def settled(self, deployment_id: str, finding: Finding) -> None:
        """An action on ``deployment_id`` ended with ``finding``: push only what differs from it."""
        self.busy.discard(deployment_id)
        self._pushed[deployment_id] = _key(finding)
        self._mark(deployment_id)

    async def _push(self, deployment_id: str) -> None:
        finding = self.assess(deployment_id)
        key = _key(finding)
        if self._pushed.get(deployment_id) == key:
            return
        self._pushed[deployment_id] = key
        if finding.state.value == "stopped":
            return  # a deletion is an action's outcome, not a finding
        tail = await self.log_tail(finding) if finding.status.value == "failing" else ""
        self.pushes += 1
        self._report(self._to_report(deployment_id, finding, tail))

    def _changed(self, kind: str, obj: dict[str, Any]) -> None:
        self._change.set()
        self._change = asyncio.Event()
        deployment = deployment_id(obj) or _involved_deployment(self, obj)
        if deployment:
            self._mark(deployment)

    def _mark(self, deployment_id: str) -> None:
        self._dirty.add(deployment_id)
        self._wake.set()


def deployment_id(obj: dict[str, Any]) -> str | None:
    """The deployment id an object of the plugin belongs to (its annotation)."""
    meta = obj.get("metadata") or {}
    value = (meta.get("annotations") or {}).get(names.DEPLOYMENT_ID)
    return str(value) if value else None


def _involved_deployment(observer: Observer, event: dict[str, Any]) -> str | None:
    involved = event.get("involvedObject") or {}
    if involved.get("kind") == "Pod":
        pod = observer.pods.objects.get(str(involved.get("name")))
        return deployment_id(pod) if pod else None
    return None


def _key(finding: Finding) -> tuple[Any, ...]:
    return (finding.state, finding.status, finding.reason, finding.data.get("available"))
