"""The crash watch: a server that died is started again, and its deployments are told.

Every ``interval_s`` (or at once when a runtime that is told of deaths calls
:meth:`CrashWatch.wake`) the watch looks for servers of this agent that are
not alive. For each:

1. ``plugin.server_crashed`` (failing) on the PE, naming the cause, and each
   deployment the server served gets its status pushed through ``report``
   (``ctx.report``): ``errored``/``failing``, "its prediction server 'shared'
   was killed by SIGKILL" — on the deployment itself, where its users look;
2. after a delay from the kit's :class:`~pilothouse.foundation.aio.backoff.Backoff`
   (growing while restarts keep failing, reset by a success), the server is
   started again in place, under the fleet's lock, so an action that needs
   it meanwhile starts it once, not twice; it restores what it served;
3. ``plugin.server_restarted`` (passing), and each deployment's status found
   by a real probe is pushed again: ``ready``/``passing``.

The statuses pushed are exactly what a health check would find
(:meth:`~pilothouse.plugins.fleet.deployments.Deployments.status`): a finding
has one status wherever it was found. A server that dies while the fleet is
closing, or that an action retired, is not a crash.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Generic

from pilothouse.agent.errors import PluginError
from pilothouse.agent.plugin import DeploymentReport
from pilothouse.foundation.aio.backoff import Backoff
from pilothouse.foundation.aio.sleep import sleep_or_wake
from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.plugins.fleet.deployments import Deployments
from pilothouse.plugins.fleet.runtime import H

log = logging.getLogger("pilothouse.plugin.fleet")

Emit = Callable[[str, Status, str, dict[str, Any]], None]
"""Report an event about the PE: (type, status, message, data)."""
Report = Callable[[DeploymentReport], None]


class CrashWatch(Generic[H]):
    """Restarts crashed servers with backoff and reports the outage on each deployment."""

    def __init__(
        self, deployments: Deployments[H], *, interval_s: float, backoff: Backoff, emit: Emit,
        report: Report,
    ) -> None:  # fmt: skip
        self._deployments = deployments
        self._servers = deployments.servers
        self._interval_s = interval_s
        self._backoff = backoff
        self._emit = emit
        self._report = report
        self._wake = asyncio.Event()
        self._failures: dict[str, int] = {}

    def wake(self) -> None:
        """Look now: a runtime was told that a server died."""
        self._wake.set()

    async def run(self) -> None:
        """Watch until cancelled."""
        while True:
            await sleep_or_wake(self._interval_s, self._wake)
            self._wake.clear()
            await self.check()

    async def check(self) -> None:
        """One round: recover every dead server nobody else is starting right now."""
        servers = self._servers
        for key, server in list(servers.by_key.items()):
            if servers.closing or servers.runtime.alive(server) or servers.lock.locked():
                continue
            attempt = self._failures.get(key, 0)
            if await self._recover(server, attempt):
                self._failures.pop(key, None)
            else:
                self._failures[key] = attempt + 1

    async def _recover(self, server: H, attempt: int) -> bool:
        cause = await self._servers.runtime.exit_cause(server)
        self._emit("plugin.server_crashed", Status.FAILING,
                   f"prediction server {server.key!r} {cause.summary}; restarting it",
                   {"server": server.key, **cause.data, "attempt": attempt + 1})  # fmt: skip
        if attempt == 0:
            await self._tell(server.key)
        await asyncio.sleep(self._backoff.delay(attempt))
        if not await self._restart(server):
            return False
        served = sorted(self._servers.served.get(server.key, ()))
        self._emit("plugin.server_restarted", Status.PASSING,
                   f"prediction server {server.key!r} restarted, serving {len(served)} deployments",
                   {"server": server.key, "deployments": served})  # fmt: skip
        await self._tell(server.key)
        return True

    async def _restart(self, server: H) -> bool:
        servers = self._servers
        async with servers.lock:
            if servers.closing or servers.by_key.get(server.key) is not server:
                return True  # unloading, retired or replaced meanwhile: not ours to restart
            try:
                restarted = await servers.ensure_running(server.key)
            except PluginError as exc:
                log.error("restart of prediction server %s failed: %s", server.key, exc)
                return False
        try:
            await self._deployments.list_server(restarted)
        except PluginError as exc:  # died again at once: the next round restarts it
            log.error("restarted prediction server %s does not answer: %s", server.key, exc)
            return False
        return True

    async def _tell(self, key: str) -> None:
        """Push the status of every deployment the server ``key`` served."""
        for deployment_id in sorted(self._servers.served.get(key, ())):
            try:
                report = await self._deployments.status(deployment_id)
            except PluginError as exc:
                log.warning("status of %s unavailable after a crash: %s", deployment_id, exc)
                continue
            self._report(report)
