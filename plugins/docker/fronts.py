"""Fronts: one per dedicated deployment, the address its clients keep through replacements.

A front is a container of the same image running :mod:`.front` (a small
reverse proxy) with the deployment's published port. The deployment's
server sits behind it on the plugin's network, found by its alias. Replacing
the server is: start the new one beside, place and probe the deployment on
it, :meth:`Fronts.point` the front at it (a file put into the front's volume,
then wait until the front says it uses it), remove the old one.

A front counts as part of its server for the fleet: the server is alive only
if its front is, so a front killed or removed behind the agent's back is
brought back by the crash watch like a server (:meth:`Fronts.revive`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import aiohttp

from pilothouse.agent.errors import TemporaryPluginError
from pilothouse.plugins.docker import archives, containers, labels
from pilothouse.plugins.docker.containers import Front, Server

if TYPE_CHECKING:
    from pilothouse.plugins.docker.runtime import DockerRuntime

log = logging.getLogger("pilothouse.plugin.docker")

SWITCH_TIMEOUT_S = 30.0
"""How long a front may take to answer with its new backend (it looks every 100 ms; a new
front must start first, which a host busy with many containers may make slow)."""


class Fronts:
    """The fronts of one PE's dedicated deployments, by key."""

    def __init__(self, runtime: DockerRuntime) -> None:
        self._runtime = runtime
        self.by_key: dict[str, Front] = {}
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the client that asks fronts what they use."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def ensure(self, key: str) -> Front:
        """The running front of ``key``, created (without a backend yet) if it has none."""
        front = self.by_key.get(key)
        if front is not None:
            await self.revive(front)
            return front
        rt = self._runtime
        name = rt.scope.name(labels.FRONT, key)
        front = Front(
            key, rt.endpoint(name), containers.front_body(rt.settings, rt.scope, key, name)
        )
        self.by_key[key] = front
        try:
            await rt.launcher.run(front.endpoint, front.body, [])
        except BaseException:
            await asyncio.shield(self.remove(key))
            raise
        return front

    async def revive(self, front: Front) -> None:
        """Start a stopped front again, or re-create a removed one (pointing where it did)."""
        files = [self._backend_tar(front.backend)] if front.backend else []
        await self._runtime.launcher.revive(front.endpoint, front.body, files)
        if front.backend is not None:  # serving again only once it answers, where it did
            await self._until_using(front, front.backend)

    async def point(self, key: str, server: Server) -> None:
        """Send the clients of ``key`` to ``server``; return once the front uses it."""
        front = self.by_key[key]
        url = server.backend_url
        await self._runtime.calls.put_file(front.endpoint.name, containers.VOLUME,
                                           self._backend_tar(url))  # fmt: skip
        await self._until_using(front, url)
        front.backend = url
        server.front = front
        log.info("front %s now sends requests to %s", front.endpoint.name, server.name)

    async def drained(self, server: Server) -> None:
        """Return once the front of ``server`` sends it nothing and has nothing in flight to it.

        Called before a replaced server is stopped: requests the front sent to it just
        before the switch are answered by it, not cut off by its stop. Bounded by
        ``stop_timeout_s`` (a front that does not answer cannot be waited for).
        """
        front = server.front
        if front is None or front.backend == server.backend_url:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._runtime.settings.stop_timeout_s
        while loop.time() < deadline:
            status = await self._status(front)
            if status is None or not status.get("in_flight", {}).get(server.backend_url):
                return
            await asyncio.sleep(0.02)
        log.warning("front %s still has requests in flight to %s: stopping it anyway",
                    front.endpoint.name, server.name)  # fmt: skip

    async def remove(self, key: str) -> None:
        """Remove the front of ``key`` and its volume (nothing if it has none)."""
        front = self.by_key.pop(key, None)
        if front is None:
            return
        calls = self._runtime.calls
        await calls.remove(
            front.endpoint.name, stop_timeout_s=self._runtime.settings.stop_timeout_s
        )
        await calls.remove_volume(front.endpoint.name)

    async def backend_of(self, front: Front) -> str | None:
        """The backend recorded in a front's volume (read at adoption)."""
        from pilothouse.agent.errors import PluginError

        path = f"{containers.VOLUME}/{containers.BACKEND_FILE}"
        try:
            text = await self._runtime.calls.read_file(front.endpoint.name, path)
        except (PluginError, KeyError):
            return None
        return text.decode(errors="replace").strip() or None

    def _backend_tar(self, url: str) -> bytes:
        uid, gid = (int(p) for p in self._runtime.settings.user.split(":"))
        return archives.one_file(containers.BACKEND_FILE, f"{url}\n".encode(), uid=uid, gid=gid,
                                 mode=0o440)  # fmt: skip

    async def _status(self, front: Front) -> dict[str, Any] | None:
        """What the front says it does (its backend, its requests in flight), or None."""
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
        try:
            async with self._http.get(front.endpoint.agent_url + containers.FRONT_PATH) as resp:
                doc = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    async def _until_using(self, front: Front, url: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SWITCH_TIMEOUT_S
        seen: object = None
        while loop.time() < deadline:
            status = await self._status(front)
            seen = status.get("backend") if status is not None else "no answer"
            if seen == url:
                return
            await asyncio.sleep(0.02)
        raise TemporaryPluginError(f"front {front.endpoint.name} did not switch to {url} within "
                                   f"{SWITCH_TIMEOUT_S:g}s (it uses {seen})")  # fmt: skip
