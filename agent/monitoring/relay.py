"""The statistics relay: every ``interval_s``, each served deployment's window, stored durably.

For every deployment that runs, it asks the plugin for the prediction
server's cumulative counters (:meth:`Plugin.statistics`), cuts the windows
since the previous reading (:func:`.readings.cut`) and writes them, together
with the new reading as the next cursor, to the monitoring store in one
transaction; the shipper takes them to the hub from there. At most
``concurrency`` readings run at once. In standalone mode nothing is stored:
the cursors live in memory and the windows only feed the rollback guard.

A reading that fails (the server is down, the plugin has no server) is logged
and skipped; the next one covers the gap, because counters are cumulative.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

import orjson
from pydantic import ValidationError

from pilothouse.agent.errors import PluginError, StatisticsError
from pilothouse.agent.monitoring.readings import Cursor, Reading, cut
from pilothouse.agent.monitoring.store import MonitoringStore
from pilothouse.agent.plugin import Plugin
from pilothouse.agent.settings import MonitoringSettings
from pilothouse.foundation.domain.events import new_id
from pilothouse.foundation.domain.monitoring import StatsWindow

log = logging.getLogger("pilothouse.monitoring")

Served = Callable[[], Iterable[str]]
"""The deployments that run now (by id)."""


class StatisticsRelay:
    """Reads, cuts and stores statistics windows."""

    def __init__(
        self,
        plugin: Plugin,
        served: Served,
        settings: MonitoringSettings,
        store: MonitoringStore | None,
        *,
        call_timeout_s: float = 30.0,
    ) -> None:
        self._plugin = plugin
        self._served = served
        self._settings = settings
        self._store = store
        self._timeout = call_timeout_s
        self._cursors: dict[str, Cursor] = {}
        # A plugin that runs no prediction server keeps ``Plugin.statistics`` (always None):
        # asking it for each of thousands of deployments every round would only burn CPU.
        self.readable = type(plugin).statistics is not Plugin.statistics
        """Whether the plugin answers statistics at all."""
        self.windows_made = 0
        self.readings_failed = 0

    def load(self, cursors: dict[str, bytes]) -> None:
        """The cursors a previous run stored with its last windows."""
        for deployment_id, body in cursors.items():
            try:
                self._cursors[deployment_id] = Cursor.model_validate_json(body)
            except ValidationError as exc:
                log.error("ignoring the stored statistics cursor of %s: %s", deployment_id, exc)

    async def run(self, started: Callable[[], None]) -> None:
        """Relay every ``interval_s`` until cancelled."""
        started()
        while True:
            await asyncio.sleep(self._settings.interval_s)
            await self.relay_all()

    async def relay_all(self) -> int:
        """One round over every served deployment; how many windows it made."""
        queue = list(self._served()) if self.readable else []
        made = 0

        async def reader() -> None:
            nonlocal made
            while queue:
                windows = await self.relay(queue.pop())
                made += len(windows)

        readers = min(self._settings.concurrency, len(queue))
        await asyncio.gather(*(reader() for _ in range(readers)))
        return made

    async def relay(self, deployment_id: str) -> list[StatsWindow]:
        """Read one deployment, store its new windows; [] when there is nothing to read."""
        cursor = self._cursors.get(deployment_id)
        try:
            reading = await self.read(deployment_id, cursor)
        except (PluginError, StatisticsError, TimeoutError) as exc:
            self.readings_failed += 1
            log.warning("statistics of %s not read: %s", deployment_id, exc,
                        extra={"deployment_id": deployment_id})  # fmt: skip
            return []
        if reading is None:
            return []
        windows = cut(cursor, reading, new_id)
        next_cursor = reading.cursor()
        if self._store is not None:
            bodies = [orjson.dumps(w.model_dump(mode="json")) for w in windows]
            dropped = await self._store.record(
                deployment_id, bodies, next_cursor.model_dump_json().encode()
            )
            if dropped:
                log.error("monitoring store full: dropped the %d oldest windows", dropped)
        self._cursors[deployment_id] = next_cursor
        self.windows_made += len(windows)
        return windows

    async def read(
        self, deployment_id: str, cursor: Cursor | None = None, *, associations: bool = True
    ) -> Reading | None:
        """The server's counters of one deployment now (None: nothing serves it)."""
        after = (cursor.associations_seq if cursor else 0) if associations else None
        async with asyncio.timeout(self._timeout):
            doc = await self._plugin.statistics(
                deployment_id, server=cursor.server if cursor else None, associations_after=after
            )
        return None if doc is None else Reading.parse(doc)

    def cursor(self, deployment_id: str) -> Cursor | None:
        """The last reading windows were cut up to."""
        return self._cursors.get(deployment_id)

    async def forget(self, deployment_id: str) -> None:
        """A deployment is gone: its cursor too."""
        if self._cursors.pop(deployment_id, None) is not None and self._store is not None:
            await self._store.forget(deployment_id)
