"""Everything monitoring adds to an agent, opened, started and closed as one part.

:class:`Monitoring` owns the monitoring store (hub mode), the statistics relay,
the rollback guard and its overrides, and — in hub mode — the window shipper
and the notice sender. The runtime decides when: :meth:`open` before the
dispatcher exists (the overrides must amend the very first snapshot),
:meth:`start` once it runs, :meth:`close` last, after the tasks are stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from pilothouse.agent.errors import HubError
from pilothouse.agent.events.bus import EventBus
from pilothouse.agent.hublink.client import HubClient
from pilothouse.agent.monitoring.guard import RollbackGuard
from pilothouse.agent.monitoring.overrides import Overrides
from pilothouse.agent.monitoring.relay import StatisticsRelay
from pilothouse.agent.monitoring.shipping import NoticeSender, WindowShipper
from pilothouse.agent.monitoring.store import MonitoringStore
from pilothouse.agent.plugin import Plugin
from pilothouse.agent.settings import AgentSettings
from pilothouse.agent.workers.dispatcher import Dispatcher
from pilothouse.agent.workers.records import DeploymentRecord
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import DeploymentState

log = logging.getLogger("pilothouse.monitoring")

Start = Callable[[str, Callable[[Callable[[], None]], Awaitable[None]]], Awaitable[None]]
TASKS = ("statistics relay", "rollback guard", "statistics shipper", "rollback notices")
"""The supervised tasks monitoring may start (the runtime stops them by these names)."""


class Monitoring:
    """Statistics relay, durable uploads and the health-gated rollback of one agent."""

    def __init__(self, settings: AgentSettings, plugin: Plugin, client: HubClient | None) -> None:
        self._settings = settings.monitoring
        self._hub_settings = settings.hub
        self._client = client
        # Always kept: rollbacks in force must survive a restart in standalone mode too.
        self.store = MonitoringStore(
            settings.state_dir / "monitoring.db", self._settings.store_max_bytes
        )
        self.overrides = Overrides()
        self._records: Callable[[], Iterable[DeploymentRecord]] = list
        # Windows are stored only for a hub to take; standalone, they feed nothing but the guard.
        windows = self.store if client is not None else None
        self.relay = StatisticsRelay(plugin, self._served, self._settings, windows)
        self.guard: RollbackGuard | None = None
        self.shipper: WindowShipper | None = None
        self.notices: NoticeSender | None = None

    @property
    def enabled(self) -> bool:
        """Whether statistics are read at all (``monitoring.enabled``)."""
        return self._settings.enabled

    async def open(self) -> None:
        """Open the store and load what a previous run left (cursors, rollbacks in force)."""
        stored = await self.store.open()
        if self._client is not None:
            self.relay.load(stored.cursors)
        self.overrides.load(stored.overrides)

    def amend(self, desired: DesiredDeployment) -> DesiredDeployment:
        """The dispatcher's amend hook: rollbacks in force."""
        return self.overrides.amend(desired)

    def observe(self, rec: DeploymentRecord) -> None:
        """The dispatcher's observed-state hook: replacements and probe failures."""
        if self.guard is not None:
            self.guard.observe(rec)

    async def start(self, start: Start, dispatcher: Dispatcher, bus: EventBus) -> None:
        """Start the relay, the guard and (hub mode) the uploads as supervised tasks."""
        if not self.enabled:
            return
        self._records = dispatcher.records.values
        guard = self.guard = RollbackGuard(
            self.relay, self.overrides, bus, poll_s=self._settings.guard_poll_s,
            store=self.store, hub=self._client is not None,
        )  # fmt: skip
        guard.amend = dispatcher.reapply
        await start("statistics relay", self.relay.run)
        await start("rollback guard", guard.run)
        if self._client is not None:
            backoff = self._hub_settings.reconnect_backoff_max_s
            self.shipper = WindowShipper(
                self.store, self._client, self._settings.batch_windows, backoff, bus.report
            )
            self.notices = NoticeSender(self.store, self._client, backoff, bus.report)
            await start("statistics shipper", self.shipper.run)
            await start("rollback notices", self.notices.run)

    async def finish(self, timeout_s: float) -> None:
        """At shutdown, after the tasks stopped: deliver what can be, then close the store."""
        try:
            if self.shipper is not None:
                await _drain(self.shipper, timeout_s)
        finally:
            await self.store.close()

    def _served(self) -> list[str]:
        return [
            r.id
            for r in self._records()
            if r.state in (DeploymentState.READY, DeploymentState.REPLACING_MODEL)
        ]


async def _drain(shipper: WindowShipper, timeout_s: float) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while await shipper.ship_once():
                pass
    except (TimeoutError, HubError) as exc:
        log.warning("statistics not all delivered at shutdown (%s); they are kept on disk", exc)
