"""The prediction servers of one PE: started on demand, adopted at start, retired.

:class:`Servers` holds one handle per key (``shared`` or a deployment id) and
the deployments each was last seen serving. Every start goes through
:meth:`Servers.ensure_running` with :attr:`Servers.lock` held, so an action,
a health check and the crash watch that all find a server dead bring back one
server, not three. A dead server of this agent is started again *in place*
(it restores what it served); a server new to this agent starts empty, even
where an old one ran: it must serve only what reconcile and the actions ask for.

A server is ready when ``/v2/health/ready`` answers (:func:`wait_ready`); one
that dies or is not ready in time is stopped and reported as not ready yet,
which the agent retries with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Generic

from pilothouse.agent.errors import PluginError, PluginNotReadyError
from pilothouse.plugins.fleet.admin import ServerAPI
from pilothouse.plugins.fleet.routing import Routing
from pilothouse.plugins.fleet.runtime import H, Runtime

log = logging.getLogger("pilothouse.plugin.fleet")

_POLL_S = 0.05


async def wait_ready(server: H, runtime: Runtime[H], timeout_s: float) -> None:
    """Wait for /v2/health/ready, or raise ``PluginNotReadyError`` saying why not."""
    assert server.api is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if not runtime.alive(server):
            cause = await runtime.exit_cause(server)
            raise PluginNotReadyError(
                f"prediction server {server.key!r} {cause.summary} while starting"
            )
        if await server.api.ready():
            return
        await asyncio.sleep(_POLL_S)
    raise PluginNotReadyError(f"prediction server {server.key!r} not ready after {timeout_s:g}s")


class Servers(Generic[H]):
    """One PE's prediction servers, by key."""

    def __init__(
        self, runtime: Runtime[H], routing: Routing, *, ready_timeout_s: float,
        request_timeout_s: float,
    ) -> None:  # fmt: skip
        self.runtime = runtime
        self.routing = routing
        self.by_key: dict[str, H] = {}
        self.served: dict[str, set[str]] = {}
        """Deployment ids each server was last seen serving (a dead one cannot be asked)."""
        self.lock = asyncio.Lock()
        self.closing = False
        """Set at unload: nothing may start a server any more."""
        self._ready_timeout_s = ready_timeout_s
        self._request_timeout_s = request_timeout_s

    def of(self, deployment_id: str) -> H | None:
        """The server that serves (or would serve) ``deployment_id``, if this agent has one."""
        return self.by_key.get(self.routing.key(deployment_id))

    async def for_deployment(self, deployment_id: str) -> H:
        """The live server of ``deployment_id``, started (or restarted) if needed."""
        async with self.lock:
            return await self.ensure_running(self.routing.key(deployment_id))

    async def ensure_running(self, key: str) -> H:
        """The live server for ``key``; call with :attr:`lock` held."""
        previous = self.by_key.get(key)
        if previous is not None and self.runtime.alive(previous):
            return previous
        if self.closing:
            raise PluginNotReadyError(f"not starting prediction server {key!r}: unloading")
        server = await self.runtime.spawn(key, previous)
        if server.api is None:
            server.api = ServerAPI(server.base_url, server.token, self._request_timeout_s)
        self.by_key[key] = server
        self.served.setdefault(key, set())
        try:
            await wait_ready(server, self.runtime, self._ready_timeout_s)
        except PluginError:
            await self.runtime.terminate(server)
            if previous is None:  # a dead server is kept: it is started again in place
                await self._forget(server)
            raise
        return server

    async def adopt(self) -> list[H]:
        """Take over the servers an earlier agent left running (and answering)."""
        adopted = await self.runtime.adopt(self._answers)
        for server in adopted:
            self.by_key[server.key] = server
            log.info("adopted prediction server %r at %s", server.key, server.base_url)
        return adopted

    async def retire(self, server: H) -> None:
        """Stop a server for good (a dedicated server whose deployment stopped)."""
        await self._forget(server)  # first: the crash watch must not see it die
        await self.runtime.terminate(server)

    async def close(self, *, terminate: bool) -> None:
        """Unload: stop the servers only if asked to (by default they outlive the agent)."""
        self.closing = True
        for server in list(self.by_key.values()):
            if terminate:
                await self.runtime.terminate(server)
            if server.api is not None:
                await server.api.close()
        if terminate:
            self.by_key.clear()
            self.served.clear()

    async def _answers(self, server: H) -> bool:
        server.api = ServerAPI(server.base_url, server.token, self._request_timeout_s)
        try:
            served = await server.api.deployments()
        except PluginError:
            await server.api.close()
            return False
        self.served[server.key] = {str(d["id"]) for d in served}
        return True

    async def _forget(self, server: H) -> None:
        if self.by_key.get(server.key) is server:
            del self.by_key[server.key]
            self.served.pop(server.key, None)
        if server.api is not None:
            await server.api.close()
