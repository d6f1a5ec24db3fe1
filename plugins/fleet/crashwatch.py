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
   started again in place, under its key's lock, so an action that needs
   it meanwhile starts it once, not twice; it restores what it served, and a
   deployment it lost on the way (a server re-created without its state) is
   placed on it again;
3. ``plugin.server_restarted`` (passing), and each deployment's status found
   by a real probe is pushed again: ``ready``/``passing``.

:meth:`CrashWatch.recheck` asks for step 3 alone for some servers (one the
infrastructure doubts, or all of them after an outage). While the
infrastructure itself is unreachable (``Servers.outage``) the watch holds off:
it could start nothing, and the outage is reported once by the watcher.

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
from pilothouse.plugins.fleet.runtime import ExitCause, H

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
        self._rechecks: set[str] = set()
        self._deaths: set[str] = set()

    def wake(self) -> None:
        """Look now (something may have changed)."""
        self._wake.set()

    def died(self, server: H) -> None:
        """A runtime was told that ``server`` stopped: report it even if it is back already.

        An infrastructure may restart a server by itself (Docker's restart policy)
        before this watch looks; the crash is reported all the same.
        """
        if self._servers.by_key.get(server.key) is server:
            self._deaths.add(server.key)
            self._wake.set()

    def recheck(self, *keys: str) -> None:
        """Probe the deployments of these servers now and push their statuses."""
        self._rechecks.update(keys)
        self._wake.set()

    async def run(self) -> None:
        """Watch until cancelled."""
        while True:
            await sleep_or_wake(self._interval_s, self._wake)
            self._wake.clear()
            await self.check()

    async def check(self) -> None:
        """One round: recover every dead server nobody else is starting right now, at once."""
        servers = self._servers
        if servers.outage is not None:
            return
        rechecks, self._rechecks = self._rechecks, set()
        deaths, self._deaths = self._deaths, set()
        work = []
        for key, server in list(servers.by_key.items()):
            if servers.closing or servers.lock(key).locked():
                self._deaths |= deaths & {key}  # told later, once the action is done
                continue
            if key in deaths or not servers.runtime.alive(server):
                work.append(self._attempt(key, server))
            elif key in rechecks:
                work.append(self._confirm(key, server))
        await asyncio.gather(*work)

    async def _confirm(self, key: str, server: H) -> None:
        """A server that runs but was in doubt: once it answers, push its deployments' status."""
        try:
            await self._servers.until_ready(server)
        except PluginError:  # it does not come up: a crash after all
            await self._attempt(key, server)
            return
        await self._tell(key)

    async def _attempt(self, key: str, server: H) -> None:
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
            self._tell_down(server, cause)
        await asyncio.sleep(self._backoff.delay(attempt))
        if not await self._restart(server):
            return False
        served = sorted(self._servers.served.get(server.key, ()))
        self._emit("plugin.server_restarted", Status.PASSING,
                   f"prediction server {server.key!r} restarted, serving {len(served)} deployments",
                   {"server": server.key, "deployments": served})  # fmt: skip
        await self._tell(server.key)
        return True

    def _tell_down(self, server: H, cause: ExitCause) -> None:
        """Push the outage to every deployment ``server`` served (as a status check would)."""
        for deployment_id in sorted(self._servers.served.get(server.key, ())):
            self._report(self._deployments.down(deployment_id, server, cause))

    async def _restart(self, server: H) -> bool:
        servers = self._servers
        async with servers.lock(server.key):
            if servers.closing or servers.by_key.get(server.key) is not server:
                return True  # unloading, retired or replaced meanwhile: not ours to restart
            served = set(servers.served.get(server.key, ()))
            try:
                restarted = await servers.ensure_running(server.key)
                await servers.until_ready(restarted)  # one its infrastructure restarted itself
                await self._deployments.restore(restarted, served)
            except PluginError as exc:  # the next round tries again, after a longer delay
                log.error("restart of prediction server %s failed: %s", server.key, exc)
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
