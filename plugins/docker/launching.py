"""Starting a container: its labelled volume, its files, a host port by the port policy.

:meth:`Launcher.run` makes a container exist and run from its create body —
a new one, or one removed behind the agent's back, re-created on the volume it
left (named volumes outlive their containers). The files it needs before its
first start (the server's admin token) are put into it between create and
start, by the archive API.

Host ports follow ``plugin_settings.ports``: an ephemeral port the engine
picks and the plugin reads back, or the lowest free port of a range. A port
another process took makes the engine refuse the *start*; within a range the
next port is tried, and only when the range is exhausted is the clash
reported (:class:`~pilothouse.plugins.docker.engine.PortClash`, temporary).
A re-created container asks for the port it had first, so its URL stays.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pilothouse.plugins.docker import containers
from pilothouse.plugins.docker.calls import Calls
from pilothouse.plugins.docker.containers import Endpoint
from pilothouse.plugins.docker.engine import NotFound, PortClash
from pilothouse.plugins.docker.settings import PortSettings
from pilothouse.plugins.docker.tracking import Tracker

log = logging.getLogger("pilothouse.plugin.docker")

File = tuple[str, bytes]
"""A tar archive to unpack under the container's volume before its start."""


class Launcher:
    """Creates and starts containers for one runtime."""

    def __init__(self, calls: Calls, tracker: Tracker, ports: PortSettings) -> None:
        self._calls = calls
        self._tracker = tracker
        self._ports = ports
        self._range_lock = asyncio.Lock()  # two starts never pick the same port of the range

    async def run(self, endpoint: Endpoint, body: dict[str, Any], files: list[bytes]) -> None:
        """Create the container of ``endpoint`` (and its volume) and start it; fill in the port."""
        await self._calls.create_volume(endpoint.name, body["Labels"])
        if self._ports.bounds() is None:
            await self._start_on(endpoint, body, files, self._ephemeral(endpoint.host_port))
        else:
            async with self._range_lock:
                await self._start_on(endpoint, body, files, await self._in_range(endpoint))

    async def revive(self, endpoint: Endpoint, body: dict[str, Any], files: list[bytes]) -> bool:
        """Start the stopped container again, or re-create it if it is gone; True if re-created."""
        try:
            info = await self._calls.inspect(endpoint.name)
        except NotFound:
            log.warning("container %s is gone: creating it again", endpoint.name)
            await self.run(endpoint, body, files)
            return True
        if not info["State"]["Running"]:
            await self._calls.start(endpoint.name)
        await self._read_back(endpoint)
        return False

    def _ephemeral(self, previous: int | None) -> list[int | None]:
        return [previous, None] if previous else [None]

    async def _in_range(self, endpoint: Endpoint) -> list[int | None]:
        bounds = self._ports.bounds()
        assert bounds is not None
        used = await self._calls.used_host_ports()
        free = [p for p in range(bounds[0], bounds[1] + 1) if p not in used]
        if endpoint.host_port in free:  # a re-created container keeps its port if it can
            free.remove(endpoint.host_port)
            free.insert(0, endpoint.host_port)
        if not free:
            raise PortClash(f"no free host port in plugin_settings.ports.range {self._ports.range}"
                            f" for container {endpoint.name}")  # fmt: skip
        return list(free)

    async def _start_on(
        self, endpoint: Endpoint, body: dict[str, Any], files: list[bytes],
        candidates: list[int | None],
    ) -> None:  # fmt: skip
        clash: PortClash | None = None
        for port in candidates:
            await self._calls.remove(endpoint.name, stop_timeout_s=None)  # a try that failed
            body_on_port = containers.with_port(body, self._ports.host_ip, port)
            await self._calls.create(endpoint.name, body_on_port)
            for tar in files:
                await self._calls.put_file(endpoint.name, containers.VOLUME, tar)
            try:
                await self._calls.start(endpoint.name)
            except PortClash as exc:
                log.info("host port %s is taken: %s", port, exc)
                clash = exc
                continue
            await self._read_back(endpoint)
            return
        await self._calls.remove(endpoint.name, stop_timeout_s=None)
        assert clash is not None
        where = f"plugin_settings.ports.range {self._ports.range}" if self._ports.range else "it"
        raise PortClash(f"container {endpoint.name} found no free host port in {where}: {clash}")

    async def _read_back(self, endpoint: Endpoint) -> None:
        info = await self._calls.inspect(endpoint.name)
        endpoint.id = str(info["Id"])
        endpoint.host_port = containers.published_port(info)
        endpoint.grpc_host_port = containers.published_port(info, containers.GRPC_PORT)
        self._tracker.set(endpoint.id, str(info["State"]["Status"]))
