"""Reconcile on start: what the plugin runs, against what is desired and what was under way.

Before the first change is routed, the plugin's ``list_deployments`` tells
what already runs. Each running deployment becomes a finding for its worker
(the one writer of its record); the state machine then launches what is
missing, replaces a wrong model and stops what should not run, exactly as for
any later change. Running deployments that no desired deployment names
(orphans) are adopted, stopped or left alone, by the ``reconcile.orphans``
setting. Every decision is an event.

What runs is compared with the spec the action journal says it last reached
(settings and relaunch token included), not only with its model: an action
that a crash interrupted is taken as done only when the plugin's report proves
it (the models it asked for run, or the plugin reports the generation); any
other is redone.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping

from pilothouse.agent.actions.journal import InFlight, JournalEntry
from pilothouse.agent.errors import PluginError
from pilothouse.agent.events.bus import EventBus
from pilothouse.agent.machine import transitions
from pilothouse.agent.plugin import DeploymentReport, Plugin
from pilothouse.agent.workers.findings import Finding, FindingSource
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
    """Finds what runs, once, from the first snapshot, and says what will be done about it."""

    def __init__(
        self,
        plugin: Plugin,
        bus: EventBus,
        orphans: OrphanPolicy,
        journal: Mapping[str, JournalEntry],
        *,
        retry: Backoff | None = None,
    ) -> None:
        self._plugin = plugin
        self._bus = bus
        self._orphans = orphans
        self._journal = journal
        self._retry = retry or Backoff(1.0, 30.0)

    async def __call__(self, snapshot: Snapshot) -> list[Finding]:
        """What runs, as findings for the workers; the plan is reported as an event."""
        reports = await self._list()
        plan: Counter[str] = Counter()
        found: list[Finding] = []
        for report in reports:
            desired = snapshot.deployments.get(report.deployment_id)
            if desired is None:
                outcome, finding = self._orphan(report)
                plan[outcome] += 1
                if finding is not None:
                    found.append(finding)
                continue
            state, _ = transitions.observe(
                DeploymentState.UNKNOWN, Status.UNKNOWN, report.state, report.status
            )
            applied = self._applied(report, desired) if state is DeploymentState.READY else None
            found.append(Finding(report, FindingSource.RECONCILE, 0, applied=applied))
            action = transitions.decide(state, applied, desired)
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
        return found

    def _applied(
        self, report: DeploymentReport, desired: DesiredDeployment
    ) -> DesiredDeployment | None:
        """The spec a running deployment reached, as far as the journal and the report prove it.

        ``None`` (nothing proven) makes the worker relaunch it with the desired spec.
        """
        entry = self._journal.get(report.deployment_id)
        if entry is None:
            # Nothing recorded (a first start on running infrastructure): what runs is
            # taken as desired, but for the models the plugin reports.
            return desired.model_copy(
                update={
                    "model_package_id": report.model_package_id or desired.model_package_id,
                    "challenger_ids": report.challenger_ids,
                }
            )
        if entry.unreadable:
            return None
        if entry.in_flight is not None and _proves(report, entry.in_flight):
            return entry.in_flight.spec
        if entry.applied is not None and (
            report.model_package_id is None or _runs(report, entry.applied)
        ):
            # No action since it was reached (a plugin that does not report models is
            # taken at its word that it still runs it, as on a first start).
            return entry.applied
        return None

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

    def _orphan(self, report: DeploymentReport) -> tuple[str, Finding | None]:
        dep_id = report.deployment_id
        if self._orphans is OrphanPolicy.LEAVE:
            self._bus.report(
                "agent.orphan_left",
                Status.AT_RISK,
                f"{dep_id} runs but is not desired; left alone (reconcile.orphans=leave)",
                deployment_id=dep_id,
                data={"model_package_id": report.model_package_id},
            )
            return "left", None
        spec = DesiredDeployment(
            id=dep_id,
            model_package_id=report.model_package_id or "unknown",
            challenger_ids=report.challenger_ids,
        )
        adopt = self._orphans is OrphanPolicy.ADOPT
        finding = Finding(report, FindingSource.RECONCILE, 0, applied=spec, adopt=adopt)
        if adopt:
            self._bus.report(
                "agent.orphan_adopted",
                Status.INFORMATIONAL,
                f"{dep_id} runs but is not desired; adopted as it is (reconcile.orphans=adopt)",
                deployment_id=dep_id,
                data={"model_package_id": report.model_package_id},
            )
            return "adopted", finding
        self._bus.report(
            "agent.orphan_stopping",
            Status.INFORMATIONAL,
            f"{dep_id} runs but is not desired; stopping it (reconcile.orphans=stop)",
            deployment_id=dep_id,
            data={"model_package_id": report.model_package_id},
        )
        return "stop", finding


def _runs(report: DeploymentReport, spec: DesiredDeployment) -> bool:
    """Whether the plugin reports ``spec``'s models running."""
    return (report.model_package_id, tuple(report.challenger_ids)) == (
        spec.model_package_id,
        spec.challenger_ids,
    )


def _proves(report: DeploymentReport, flight: InFlight) -> bool:
    """Whether the report proves that an interrupted action completed.

    A launch or a model replacement shows in the models that run; a relaunch
    (same models, new settings or a new start) only in the generation, which
    a plugin may report.
    """
    if not _runs(report, flight.spec):
        return False
    if report.generation is not None:
        return report.generation >= flight.spec.generation
    return flight.action in (Action.LAUNCH, Action.REPLACE_MODEL)
