"""The prediction servers of one PE: started on demand, adopted at start, retired.

:class:`Servers` holds one handle per key (``shared`` or a deployment id) and
the deployments each was last seen serving. Every start goes through
:meth:`Servers.ensure_running` with the key's lock (:meth:`Servers.lock`) held,
so an action, a health check and the crash watch that all find a server dead
bring back one server, not three; servers of different keys start in
parallel. A dead server of this agent is started again *in place* (it
restores what it served); a server new to this agent starts empty, even where
an old one ran: it must serve only what reconcile and the actions ask for.

A server is ready when ``/v2/health/ready`` answers (:func:`wait_ready`); one
that dies or is not ready in time is stopped and reported as not ready yet,
which the agent retries with backoff. Once ready, the fleet asks it where it
serves gRPC (``GET /admin/server``) and keeps the answer on its handle.

With a :class:`~pilothouse.plugins.fleet.runtime.Switching` runtime a key's
server can be replaced: :meth:`Servers.start_beside` starts a second one that
no client reaches yet, and :meth:`Servers.switch` makes it *the* server of the
key, returning the old one for the caller to remove.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Generic

from pilothouse.agent.errors import PluginError, PluginNotReadyError
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.plugins.fleet.admin import ServerAPI
from pilothouse.plugins.fleet.routing import Routing
from pilothouse.plugins.fleet.runtime import H, Runtime, Switching

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
        self.closing = False
        """Set at unload: nothing may start a server any more."""
        self.outage: str | None = None
        """Why the infrastructure cannot be reached now (set by the kit's watcher)."""
        self._locks: dict[str, asyncio.Lock] = {}
        self._ready_timeout_s = ready_timeout_s
        self._request_timeout_s = request_timeout_s

    @property
    def switching(self) -> Switching[H] | None:
        """The runtime, if clients reach its servers through something it can switch."""
        runtime = self.runtime
        return runtime if isinstance(runtime, Switching) else None

    def lock(self, key: str) -> asyncio.Lock:
        """The lock held while the server of ``key`` is started, restarted or replaced."""
        return self._locks.setdefault(key, asyncio.Lock())

    def of(self, deployment_id: str) -> H | None:
        """The server that serves (or would serve) ``deployment_id``, if this agent has one."""
        return self.by_key.get(self.routing.key(deployment_id))

    async def for_deployment(self, deployment_id: str, spec: DesiredDeployment | None = None) -> H:
        """The live server of ``deployment_id``, started (or restarted) if needed."""
        key = self.routing.key(deployment_id)
        async with self.lock(key):
            return await self.ensure_running(key, spec if self.routing.dedicated else None)

    async def ensure_running(self, key: str, spec: DesiredDeployment | None = None) -> H:
        """The live server for ``key``; call with :meth:`lock` of ``key`` held."""
        previous = self.by_key.get(key)
        if previous is not None and self.runtime.alive(previous):
            return previous
        if self.closing:
            raise PluginNotReadyError(f"not starting prediction server {key!r}: unloading")
        server = await self.runtime.spawn(key, previous, None if previous else spec)
        await self._attach(server)
        self.by_key[key] = server
        self.served.setdefault(key, set())
        try:
            await wait_ready(server, self.runtime, self._ready_timeout_s)
            await self._learn_grpc(server)
            if previous is None and self.switching is not None:
                await self.switching.switch(key, server)  # the key's first server: no one to spare
        except PluginError:
            await self.runtime.terminate(server)
            if previous is None:  # a dead server is kept: it is started again in place
                await self._forget(server)
            raise
        return server

    async def until_ready(self, server: H) -> None:
        """Wait until a live server answers /v2/health/ready (its infrastructure restarted it)."""
        await wait_ready(server, self.runtime, self._ready_timeout_s)
        await self._learn_grpc(server)

    async def start_beside(self, key: str, spec: DesiredDeployment) -> H:
        """A new, ready server for ``key`` beside the current one; no client reaches it yet."""
        if self.closing:
            raise PluginNotReadyError(f"not starting prediction server {key!r}: unloading")
        server = await self.runtime.spawn(key, None, spec)
        await self._attach(server)
        try:
            await wait_ready(server, self.runtime, self._ready_timeout_s)
            await self._learn_grpc(server)
        except BaseException:
            await asyncio.shield(self.discard(server))
            raise
        return server

    async def switch(self, key: str, server: H, serving: set[str]) -> H | None:
        """Make ``server`` (from :meth:`start_beside`) the server of ``key``; the old one."""
        assert self.switching is not None, "only a Switching runtime replaces servers"
        await self.switching.switch(key, server)
        old = self.by_key.get(key)
        self.by_key[key] = server
        self.served[key] = set(serving)
        return old if old is not server else None

    async def discard(self, server: H) -> None:
        """Stop a server that is not (or no longer) the server of its key."""
        try:
            await self.runtime.terminate(server)
        finally:
            if server.api is not None:
                await server.api.close()

    async def adopt(self) -> list[H]:
        """Take over the servers an earlier agent left running (and answering), or dead."""
        adopted = await self.runtime.adopt(self._answers)
        for server in adopted:
            await self._attach(server)
            self.by_key[server.key] = server
            self.served.setdefault(server.key, set())
            dead = "" if self.runtime.alive(server) else " (not running: the crash watch starts it)"
            log.info("adopted prediction server %r at %s%s", server.key, server.base_url, dead)
        return adopted

    async def retire(self, server: H) -> None:
        """Stop a server for good (a dedicated server whose deployment stopped)."""
        await self._forget(server)  # first: the crash watch must not see it die
        await self.runtime.terminate(server)
        if self.switching is not None and server.key not in self.by_key:
            await self.switching.release(server.key)

    async def close(self, *, terminate: bool) -> None:
        """Unload: stop the servers only if asked to (by default they outlive the agent)."""
        self.closing = True
        for key, server in list(self.by_key.items()):
            if terminate:
                await self.runtime.terminate(server)
                if self.switching is not None:
                    await self.switching.release(key)
            if server.api is not None:
                await server.api.close()
        if terminate:
            self.by_key.clear()
            self.served.clear()

    async def _attach(self, server: H) -> None:
        """Give ``server`` an admin client for where it is now (a re-created one may move)."""
        api = server.api
        if api is not None and api.base_url == server.base_url and api.token == server.token:
            return
        if api is not None:
            await api.close()
        server.api = ServerAPI(server.base_url, server.token, self._request_timeout_s)

    async def _answers(self, server: H) -> bool:
        server.api = ServerAPI(server.base_url, server.token, self._request_timeout_s)
        try:
            served = await server.api.deployments()
            await self._learn_grpc(server)
        except PluginError:
            await server.api.close()
            server.api = None
            return False
        self.served[server.key] = {str(d["id"]) for d in served}
        return True

    @staticmethod
    async def _learn_grpc(server: H) -> None:
        """Where the server serves gRPC, as it says itself (None: it does not)."""
        assert server.api is not None
        port = (await server.api.endpoints()).get("grpc_port")
        server.grpc_port = port if isinstance(port, int) else None

    async def _forget(self, server: H) -> None:
        if self.by_key.get(server.key) is server:
            del self.by_key[server.key]
            self.served.pop(server.key, None)
        if server.api is not None:
            await server.api.close()
