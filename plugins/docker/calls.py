"""Every call the plugin makes to the engine, each one named and translated.

The runtime speaks in containers, volumes and files; this module is the only
one that holds the ``aiodocker`` client, and each call runs inside
:func:`~pilothouse.plugins.docker.engine.translated` with a description of
what it was doing ("start container pilothouse-pe-shared-1a2b3c"), so an
error the user reads says what failed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiodocker
from aiodocker.containers import DockerContainer
from aiodocker.volumes import DockerVolume

from pilothouse.agent.errors import PermanentPluginError
from pilothouse.plugins.docker import archives
from pilothouse.plugins.docker.engine import EngineBusy, ImageMissing, NotFound, translated
from pilothouse.plugins.docker.labels import OWNER
from pilothouse.plugins.docker.settings import EngineSettings

log = logging.getLogger("pilothouse.plugin.docker")

Event = dict[str, Any]
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


class Calls:
    """The engine calls of one plugin instance."""

    def __init__(self, client: aiodocker.Docker, settings: EngineSettings) -> None:
        self._client = client
        self.url = settings.url

    async def close(self) -> None:
        """Close the client (and any event stream)."""
        await self._client.close()

    # --- the engine ----------------------------------------------------------------

    async def version(self) -> dict[str, Any]:
        """The engine's version document (a cheap "are you there")."""
        with translated(f"the Docker engine at {self.url}"):
            version: dict[str, Any] = await self._client.version()
            return version

    async def now(self) -> float:
        """The engine's clock, as a Unix time (events are asked for from it)."""
        with translated(f"the Docker engine at {self.url}"):
            info = await self._client.system.info()
        return _unix_time(str(info.get("SystemTime", "")))

    async def events(
        self, filters: dict[str, list[str]], since: float, apply: Callable[[Event], None]
    ) -> None:
        """Hand each event matching ``filters`` from ``since`` on to ``apply`` until it ends."""
        events = self._client.events
        subscriber = events.subscribe(create_task=False)  # type: ignore[no-untyped-call]
        stream = asyncio.ensure_future(
            events.run(filters=json.dumps(filters), since=f"{since:.9f}")
        )
        try:
            while (event := await subscriber.get()) is not None:
                apply(event)
            with translated(f"the event stream of the Docker engine at {self.url}"):
                await stream
        finally:
            # Always awaited, also when it already ended: a stream that failed while this
            # reader was being cancelled (the client closing at shutdown) would otherwise
            # leave its error unretrieved, reported by the loop after the plugin stopped.
            stream.cancel()
            await asyncio.gather(stream, return_exceptions=True)

    # --- images and networks ----------------------------------------------------------

    async def ensure_image(self, image: str, pull: str) -> None:
        """The image is on the engine, pulled if the ``pull`` setting allows."""
        fix = "build it (make image), pull it, or set plugin_settings.image"
        if pull != "always":
            try:
                with translated(f"inspect image {image}"):
                    await self._client.images.inspect(image)
                return
            except (NotFound, ImageMissing) as exc:
                if pull == "never":
                    where = f"the image {image!r} is not on the engine ({self.url})"
                    message = f"{where} and plugin_settings.pull is 'never': {fix}"
                    raise ImageMissing(message) from exc
        try:
            with translated(f"pull image {image}"):
                await self._client.images.pull(image)
        except (PermanentPluginError, EngineBusy) as exc:
            raise ImageMissing(f"the image {image!r} is not on the engine ({self.url}) and pulling "
                               f"it failed ({exc}): {fix}") from exc  # fmt: skip

    async def ensure_network(self, name: str, labels: dict[str, str]) -> None:
        """The network exists (created with ``labels`` if it did not)."""
        if name in ("host", "none", "bridge", "default"):
            return
        try:
            with translated(f"inspect network {name}"):
                await self._client.networks.get(name)
        except NotFound:
            config = {"Name": name, "Driver": "bridge", "Labels": labels, "CheckDuplicate": True}
            try:
                with translated(f"create network {name}"):
                    await self._client.networks.create(config)
            except EngineBusy:  # 409: another agent created it meanwhile
                return
            log.info("created network %s", name)

    # --- containers -------------------------------------------------------------------

    async def containers(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        """Containers (running or not) matching ``filters``, as the list call returns them."""
        with translated("list containers"):
            found = await self._client.containers.list(all=True, filters=json.dumps(filters))
        return [dict(c._container) for c in found]

    async def used_host_ports(self) -> set[int]:
        """Host ports published by any running container on the engine."""
        with translated("list containers"):
            found = await self._client.containers.list()
        return {int(p["PublicPort"]) for c in found for p in c._container.get("Ports") or []
                if p.get("PublicPort")}  # fmt: skip

    async def inspect(self, name: str) -> dict[str, Any]:
        """``docker inspect`` of a container (``NotFound`` if it is gone)."""
        with translated(f"inspect container {name}"):
            info: dict[str, Any] = await self._container(name).show()
            return info

    async def create(self, name: str, body: dict[str, Any]) -> str:
        """Create a container (not started) and its volumes; its id."""
        with translated(f"create container {name}"):
            created = await self._client.containers.create(body, name=name)
        return created.id

    async def start(self, name: str) -> None:
        """Start a container (nothing if it runs already)."""
        with translated(f"start container {name}"):
            await self._container(name).start()

    async def remove(self, name: str, *, stop_timeout_s: int | None) -> None:
        """Stop (gracefully within ``stop_timeout_s``, if given) and remove; nothing if gone."""
        container = self._container(name)
        try:
            if stop_timeout_s is not None:
                with translated(f"stop container {name}"):
                    await container.stop(t=stop_timeout_s)
            with translated(f"remove container {name}"):
                await container.delete(force=True, v=True)
        except NotFound:
            return

    async def logs(self, name: str, lines: int) -> list[str]:
        """The last ``lines`` lines of a container's output (empty if it is gone or going)."""
        try:
            with translated(f"read the log of container {name}"):
                chunks = await self._container(name).log(stdout=True, stderr=True, tail=lines)
        except (NotFound, EngineBusy):  # 409: "marked for removal"
            return []
        return "".join(chunks).splitlines()[-lines:]

    async def put_file(self, name: str, directory: str, tar: bytes | Path) -> None:
        """Unpack ``tar`` (bytes, or a tar file on the agent's disk) under ``directory``."""
        with translated(f"copy into container {name}"):
            if isinstance(tar, Path):
                with tar.open("rb") as fh:
                    await self._container(name).put_archive(directory, fh)  # type: ignore[no-untyped-call]
            else:
                await self._container(name).put_archive(directory, tar)  # type: ignore[no-untyped-call]

    async def read_file(self, name: str, path: str) -> bytes:
        """One file of a container (running or not)."""
        with translated(f"read {path} of container {name}"):
            archive = await self._container(name).get_archive(path)
        try:
            return archives.read_member(archive, Path(path).name)
        finally:
            archive.close()

    # --- volumes ---------------------------------------------------------------------

    async def create_volume(self, name: str, labels: dict[str, str]) -> None:
        """Create a named volume with ``labels`` (nothing if it exists)."""
        with translated(f"create volume {name}"):
            await self._client.volumes.create(  # type: ignore[no-untyped-call]
                {"Name": name, "Labels": labels}
            )

    async def volumes(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        """Volumes matching ``filters``."""
        with translated("list volumes"):
            found = await self._client.volumes.list(filters=filters)  # type: ignore[no-untyped-call]
        return list(found.get("Volumes") or [])

    async def remove_volume(self, name: str) -> None:
        """Remove a volume; nothing if it is gone."""
        try:
            with translated(f"remove volume {name}"):
                volume = DockerVolume(self._client, name)  # type: ignore[no-untyped-call]
                await volume.delete()  # type: ignore[no-untyped-call]
        except NotFound:
            return

    def _container(self, name: str) -> DockerContainer:
        return self._client.containers.container(name)


def owner_labels(owner: str) -> dict[str, str]:
    """The labels of a network the plugin creates (shared by every PE of the owner)."""
    return {OWNER: owner}


def _unix_time(text: str) -> float:
    """RFC 3339 with nanoseconds (the engine's clock) to a Unix time; ours if unreadable."""
    match = _RFC3339.match(text)
    if match is None:
        return time.time()
    zone = "+00:00" if match[3] == "Z" else match[3]
    stamp = dt.datetime.fromisoformat(match[1] + zone)
    return stamp.timestamp() + float("0" + (match[2] or ".0"))
