"""The health reporter: periodic status checks, handed to the deployments' workers.

Every ``interval_s`` it asks the plugin for the PE's status and for the status
of each deployment that has no action in flight, at most ``concurrency`` at a
time (a fixed pool of checkers, not one task per deployment, so ten thousand
deployments cost ten thousand awaits, not ten thousand tasks). The PE's status
is its own: a change becomes an event here. A deployment's is not: a finding
that would change its state or health goes to the deployment's worker (the one
writer of its record), which emits the event and repairs what needs it. A
finding that changes nothing wakes no worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping

from pilothouse.agent.errors import PluginError
from pilothouse.agent.events.bus import EventBus
from pilothouse.agent.plugin import DeploymentReport, Plugin
from pilothouse.agent.settings import HealthSettings
from pilothouse.agent.workers import findings
from pilothouse.agent.workers.dispatcher import Dispatcher
from pilothouse.agent.workers.findings import Finding, FindingSource
from pilothouse.agent.workers.records import DeploymentRecord
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status

log = logging.getLogger("pilothouse.health")


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
        crashed_tasks: Callable[[], Mapping[str, str]] = dict,
    ) -> None:
        self._plugin = plugin
        self._crashed_tasks = crashed_tasks
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
        crashed = self._crashed_tasks()
        if crashed:
            # A plugin task that crash-looped stays down: the PE cannot be healthy.
            status = Status.FAILING
            message = "plugin tasks down: " + ", ".join(f"{n} ({e})" for n, e in crashed.items())
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
            stamp = rec.stamp
            try:
                async with asyncio.timeout(self._timeout):
                    report = await self._plugin.deployment_status(rec.id)
            except (PluginError, TimeoutError) as exc:
                report = DeploymentReport(
                    rec.id, rec.state, Status.UNKNOWN, f"status unavailable: {exc}"
                )
            if stamp == rec.stamp and findings.news(rec, report):
                self._dispatcher.deliver(Finding(report, FindingSource.HEALTH_CHECK, stamp))
