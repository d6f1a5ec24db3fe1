"""The watcher: a runtime's change stream kept connected, and its outages reported.

A :class:`~pilothouse.plugins.fleet.runtime.Watching` runtime learns of its
servers' deaths from the infrastructure itself (Docker's event stream, a
Kubernetes watch) instead of polling. Streams break — the engine restarts, the
API server goes away — so :class:`Watcher` runs the runtime's ``watch`` in a
loop, the way informers do (list, then watch; list again after every break):

1. ``watch`` connects, re-reads every server's state and calls ``synced``: the
   crash watch looks at once (a server that died or was removed meanwhile is
   started again or re-created), and if the infrastructure had been unreachable,
   ``plugin.infrastructure_reachable`` (passing) is reported and every
   deployment's status is pushed again (``ctx.report``);
2. each death it reports (``died``) wakes the crash watch, which reports the
   cause and restarts the server with backoff; a server the infrastructure
   doubts (``suspect``: a failing health check) has its deployments probed and
   their status pushed;
3. when the stream breaks or cannot be opened, ``plugin.infrastructure_unreachable``
   (failing) is reported once for the outage, the PE's environment status is
   failing (:attr:`Servers.outage <pilothouse.plugins.fleet.servers.Servers.outage>`),
   the crash watch holds off (it could start nothing), and the watcher tries
   again after a delay from the kit's :class:`~pilothouse.foundation.aio.backoff.Backoff`,
   reset by every successful connection.

Nothing here restarts the agent: the plugin stays loaded through any outage.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Generic

from pilothouse.agent.errors import PluginError
from pilothouse.foundation.aio.backoff import Backoff
from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.plugins.fleet.crashwatch import CrashWatch, Emit
from pilothouse.plugins.fleet.runtime import H, WatchHooks, Watching
from pilothouse.plugins.fleet.servers import Servers

log = logging.getLogger("pilothouse.plugin.fleet")


class Watcher(Generic[H]):
    """Keeps a runtime's change stream connected; reports outages and recoveries."""

    def __init__(
        self, runtime: Watching, servers: Servers[H], crash_watch: CrashWatch[H], *,
        backoff: Backoff, emit: Emit,
    ) -> None:  # fmt: skip
        self._runtime = runtime
        self._servers = servers
        self._crash_watch = crash_watch
        self._backoff = backoff
        self._emit = emit
        self._syncs = 0
        self.hooks: WatchHooks[H] = WatchHooks(self._synced, self._died, self._suspect)

    async def run(self) -> None:
        """Follow the stream until cancelled, reconnecting after each break."""
        attempt = 0
        while True:
            syncs = self._syncs
            try:
                await self._runtime.watch(self.hooks)
                reason = "its event stream ended"
            except PluginError as exc:
                reason = str(exc)
            self._lost(reason)
            attempt = 0 if self._syncs > syncs else attempt + 1
            await asyncio.sleep(self._backoff.delay(attempt))

    def _lost(self, reason: str) -> None:
        if self._servers.closing:
            return
        if self._servers.outage is None:
            self._servers.outage = reason
            what = self._runtime.infrastructure
            self._emit("plugin.infrastructure_unreachable", Status.FAILING,
                       f"{what} cannot be reached: {reason}; reconnecting",
                       {"infrastructure": what, "error": reason})  # fmt: skip
        else:
            log.info("%s still unreachable: %s", self._runtime.infrastructure, reason)

    def _synced(self) -> None:
        self._syncs += 1
        if self._servers.outage is not None:
            down, self._servers.outage = self._servers.outage, None
            servers = self._servers
            running = sum(1 for s in servers.by_key.values() if servers.runtime.alive(s))
            what = self._runtime.infrastructure
            self._emit("plugin.infrastructure_reachable", Status.PASSING,
                       f"{what} is reachable again; {running} of {len(servers.by_key)} "
                       "prediction servers running, the others are being started again",
                       {"infrastructure": what, "was": down, "running": running,
                        "servers": len(servers.by_key)})  # fmt: skip
            self._crash_watch.recheck(*servers.by_key)
        self._crash_watch.wake()

    def _died(self, server: H) -> None:
        self._crash_watch.died(server)

    def _suspect(self, server: H) -> None:
        if self._servers.by_key.get(server.key) is server:
            self._crash_watch.recheck(server.key)
