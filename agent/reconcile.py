"""Reconcile on start: what the plugin runs, against what is desired.

Before the first change is routed, the plugin's ``list_deployments`` tells
what already runs. Each running deployment is recorded as it is; the state
machine then launches what is missing, replaces a wrong model and stops what
should not run, exactly as for any later change. Running deployments that no
desired deployment names (orphans) are adopted, stopped or left alone, by the
``reconcile.orphans`` setting. Every decision is an event.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from pilothouse.agent.errors import PluginError
from pilothouse.agent.events.bus import EventBus
from pilothouse.agent.machine import transitions
from pilothouse.agent.plugin import DeploymentReport, Plugin
from pilothouse.agent.workers.dispatcher import Dispatcher
from pilothouse.foundation.aio.backoff import Backoff
from pilothouse.foundation.domain.changes import Snapshot
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import (
    Action,
    DeploymentState,
    DesiredRun,
    OrphanPolicy,
    Status,
)

log = logging.getLogger("pilothouse.reconcile")


class Reconciler:
    """Seeds the dispatcher with what runs, once, from the first snapshot."""

    def __init__(
        self,
        plugin: Plugin,
        bus: EventBus,
        orphans: OrphanPolicy,
        *,
        retry: Backoff | None = None,
    ) -> None:
        self._plugin = plugin
        self._bus = bus
        self._orphans = orphans
        self._retry = retry or Backoff(1.0, 30.0)

    async def __call__(self, dispatcher: Dispatcher, snapshot: Snapshot) -> None:
        """Record in ``dispatcher`` what runs, and report what will be done about it."""
        reports = await self._list()
        plan: Counter[str] = Counter()
        for report in reports:
            desired = snapshot.deployments.get(report.deployment_id)
            if desired is None:
                plan[self._orphan(dispatcher, report)] += 1
                continue
            applied = (
                desired.model_copy(
                    update={
                        "model_package_id": report.model_package_id or desired.model_package_id,
                        "challenger_ids": report.challenger_ids,
                    }
                )
                if report.state is DeploymentState.READY
                else None
            )
            _seed(dispatcher, report, applied)
            action = transitions.decide(report.state, applied, desired)
            plan[action.value if action else "unchanged"] += 1
        running = {r.deployment_id for r in reports}
        missing = sum(
            1
            for d in snapshot.deployments.values()
            if d.id not in running and d.state is DesiredRun.LAUNCHED
        )
        if missing:
            plan[Action.LAUNCH.value] += missing
        self._bus.report(
            "agent.reconciled",
            Status.INFORMATIONAL,
            f"reconciled {len(reports)} running deployments against {len(snapshot.deployments)} "
            f"desired: " + ", ".join(f"{n} {what}" for what, n in sorted(plan.items()))
            if plan
            else "reconciled: nothing runs and nothing is desired",
            data={
                "running": len(reports),
                "desired": len(snapshot.deployments),
                "plan": dict(plan),
            },
        )

    async def _list(self) -> list[DeploymentReport]:
        attempt = 0
        while True:
            try:
                return await self._plugin.list_deployments()
            except PluginError as exc:
                delay = self._retry.delay(attempt)
                attempt += 1
                self._bus.report(
                    "agent.reconcile_retrying",
                    Status.AT_RISK,
                    f"cannot list running deployments yet ({exc}); retrying in {delay:.1f}s",
                    data={"error": str(exc), "attempt": attempt},
                )
                await asyncio.sleep(delay)

    def _orphan(self, dispatcher: Dispatcher, report: DeploymentReport) -> str:
        dep_id = report.deployment_id
        if self._orphans is OrphanPolicy.LEAVE:
            self._bus.report(
                "agent.orphan_left",
                Status.AT_RISK,
                f"{dep_id} runs but is not desired; left alone (reconcile.orphans=leave)",
                deployment_id=dep_id,
                data={"model_package_id": report.model_package_id},
            )
            return "left"
        spec = DesiredDeployment(
            id=dep_id,
            model_package_id=report.model_package_id or "unknown",
            challenger_ids=report.challenger_ids,
        )
        adopt = self._orphans is OrphanPolicy.ADOPT
        _seed(dispatcher, report, spec, adopted=adopt)
        if adopt:
            self._bus.report(
                "agent.orphan_adopted",
                Status.INFORMATIONAL,
                f"{dep_id} runs but is not desired; adopted as it is (reconcile.orphans=adopt)",
                deployment_id=dep_id,
                data={"model_package_id": report.model_package_id},
            )
            return "adopted"
        self._bus.report(
            "agent.orphan_stopping",
            Status.INFORMATIONAL,
            f"{dep_id} runs but is not desired; stopping it (reconcile.orphans=stop)",
            deployment_id=dep_id,
            data={"model_package_id": report.model_package_id},
        )
        dispatcher.poke(dep_id)
        return "stop"


def _seed(
    dispatcher: Dispatcher,
    report: DeploymentReport,
    applied: DesiredDeployment | None,
    *,
    adopted: bool = False,
) -> None:
    dispatcher.seed(
        report.deployment_id,
        state=_settled_state(report.state),
        status=report.status,
        applied=applied,
        model_package_id=report.model_package_id,
        prediction_url=report.prediction_url,
        adopted=adopted,
    )


def _settled_state(found: DeploymentState) -> DeploymentState:
    """A state with no action in flight: anything half-done is treated as errored."""
    if found in (DeploymentState.READY, DeploymentState.STOPPED):
        return found
    return DeploymentState.ERRORED
