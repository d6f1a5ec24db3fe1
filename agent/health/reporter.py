"""The health reporter: periodic status checks, events only on change.

Every ``interval_s`` it asks the plugin for the PE's status and for the status
of each deployment that has no action in flight, at most ``concurrency`` at a
time (a fixed pool of checkers, not one task per deployment, so ten thousand
deployments cost ten thousand awaits, not ten thousand tasks). A status that
differs from the last one known becomes an event; a deployment found stopped
or broken while it should run is moved by the state machine and its worker is
poked to repair it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

from pilothouse.agent.errors import PluginError
from pilothouse.agent.events.bus import EventBus
from pilothouse.agent.machine import transitions
from pilothouse.agent.machine.transitions import Trigger
from pilothouse.agent.plugin import DeploymentReport, Plugin
from pilothouse.agent.settings import HealthSettings
from pilothouse.agent.workers.dispatcher import Dispatcher
from pilothouse.agent.workers.records import DeploymentRecord
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status

log = logging.getLogger("pilothouse.health")

_FINDINGS = {
    DeploymentState.READY: Trigger.FOUND_RUNNING,
    DeploymentState.STOPPED: Trigger.FOUND_STOPPED,
    DeploymentState.ERRORED: Trigger.FOUND_BROKEN,
}


class HealthReporter:
    """Checks statuses periodically and reports changes as events."""

    def __init__(
        self,
        plugin: Plugin,
        dispatcher: Dispatcher,
        bus: EventBus,
        settings: HealthSettings,
        *,
        call_timeout_s: float = 30.0,
    ) -> None:
        self._plugin = plugin
        self._dispatcher = dispatcher
        self._bus = bus
        self._settings = settings
        self._timeout = call_timeout_s
        self.environment_status = Status.UNKNOWN
        self.rounds = 0

    async def run(self, started: Callable[[], None]) -> None:
        """Check every ``interval_s`` until cancelled."""
        started()
        while True:
            await asyncio.sleep(self._settings.interval_s)
            await self.check_all()

    async def check_all(self) -> None:
        """One round: the environment, then every idle running deployment."""
        await self._check_environment()
        due = [r for r in self._dispatcher.idle_records() if r.state is not DeploymentState.STOPPED]
        todo = iter(due)
        checkers = min(self._settings.concurrency, len(due))
        await asyncio.gather(*(self._checker(todo) for _ in range(checkers)))
        self.rounds += 1

    async def _check_environment(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                report = await self._plugin.environment_status()
        except (PluginError, TimeoutError) as exc:
            status, message = Status.UNKNOWN, f"environment status unavailable: {exc}"
        else:
            status, message = report.status, report.message
        if status != self.environment_status:
            old, self.environment_status = self.environment_status, status
            self._bus.report(
                "environment.health_changed",
                status,
                f"prediction environment is {status.value}" + (f": {message}" if message else ""),
                data={"previous": old.value, "status": status.value},
            )

    async def _checker(self, todo: Iterator[DeploymentRecord]) -> None:
        for rec in todo:
            if rec.busy:
                continue
            try:
                async with asyncio.timeout(self._timeout):
                    report = await self._plugin.deployment_status(rec.id)
            except (PluginError, TimeoutError) as exc:
                report = DeploymentReport(
                    rec.id, rec.state, Status.UNKNOWN, f"status unavailable: {exc}"
                )
            self._apply(rec, report)

    def _apply(self, rec: DeploymentRecord, report: DeploymentReport) -> None:
        if rec.busy or rec.id not in self._dispatcher.records:
            return  # an action started meanwhile; its own events tell the story
        if report.status != rec.status:
            old, rec.status = rec.status, report.status
            self._bus.report(
                "deployment.health_changed",
                report.status,
                f"{rec.id} is {report.status.value}"
                + (f": {report.message}" if report.message else ""),
                deployment_id=rec.id,
                data={"previous": old.value, "status": report.status.value, **report.data},
            )
        self._observe_state(rec, report)

    def _observe_state(self, rec: DeploymentRecord, report: DeploymentReport) -> None:
        trigger = _FINDINGS.get(report.state)
        if trigger is None or transitions.TRANSITIONS.get((rec.state, trigger)) is None:
            return
        new = transitions.transition(rec.state, trigger)
        if new is rec.state:
            return
        rec.state = new
        if new is DeploymentState.ERRORED:
            rec.applied = None
        self._bus.report(
            f"deployment.{new.value}",
            Status.FAILING if new is DeploymentState.ERRORED else Status.INFORMATIONAL,
            f"{rec.id} is {new.value}: found {report.state.value} by a health check"
            + (f" ({report.message})" if report.message else ""),
            deployment_id=rec.id,
            data={"state": new.value, "found": report.state.value},
        )
        self._dispatcher.observed(rec)
        self._dispatcher.poke(rec.id)
