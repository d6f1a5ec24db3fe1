"""The Docker runtime: prediction servers as labelled containers on one engine.

What the fleet kit cannot know about containers (see
:mod:`pilothouse.plugins.fleet.runtime`):

- **spawn** — a container of the server image with a named volume of its own,
  the admin token put into the volume before the first start, a host port by
  the port policy, CPU and memory limits from the deployment's
  ``settings.resources`` (dedicated) or the plugin's ``limits``; in dedicated
  mode, the deployment's front first (:mod:`.fronts`). A dead server is
  started again in place, or re-created on its volume if it was removed.
- **alive** — from the engine's event stream (:mod:`.tracking`), no call.
- **terminate** — stop (the server finishes its requests), remove, remove its volume.
- **adopt** — the containers with this owner's and PE's labels (:mod:`.adoption`).
- **exit_cause** — exit code, OOM flag, the last 20 lines of the log (:mod:`.causes`).
- **deliver** — the package archive put into the server's volume by the archive
  API; the server checks its sha256 before it unpacks or loads anything.
- **watch** — the event stream, re-listed at every connection (:class:`Watching`).
- **fits / switch / release** — dedicated replacement through the front
  (:class:`Switching`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from pilothouse.agent.errors import PermanentPluginError
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.modelpkg import PackageError
from pilothouse.plugins.docker import archives, causes, containers, labels
from pilothouse.plugins.docker.calls import Calls, owner_labels
from pilothouse.plugins.docker.containers import Endpoint, Front, Server
from pilothouse.plugins.docker.engine import ImageMissing, NotFound
from pilothouse.plugins.docker.fronts import Fronts
from pilothouse.plugins.docker.launching import Launcher
from pilothouse.plugins.docker.settings import DockerPluginSettings
from pilothouse.plugins.docker.tracking import Tracker
from pilothouse.plugins.fleet import ExitCause, PackageRef
from pilothouse.plugins.fleet.runtime import Answers, WatchHooks

log = logging.getLogger("pilothouse.plugin.docker")


class DockerRuntime:
    """Spawns, watches, replaces, stops and adopts the server containers of one PE."""

    def __init__(
        self, settings: DockerPluginSettings, calls: Calls, scope: labels.Scope, state_dir: Path
    ) -> None:
        self.settings = settings
        self.calls = calls
        self.scope = scope
        self.infrastructure = f"the Docker engine at {settings.engine.url}"
        self.servers: dict[str, Server] = {}
        """Every server container this runtime counts on, by name (a replacement's too)."""
        self.tracker = Tracker(self._watched)
        self.launcher = Launcher(calls, self.tracker, settings.ports)
        self.fronts = Fronts(self)
        self._uid, self._gid = (int(p) for p in settings.user.split(":"))
        self._archives = state_dir / "archives"
        self._packed: dict[tuple[str, Path], tuple[Path, str]] = {}
        self._prepared = False
        self._delivering = asyncio.Lock()

    async def close(self) -> None:
        """Close the engine client and the front's client."""
        await self.fronts.close()
        await self.calls.close()

    # --- Runtime --------------------------------------------------------------------

    async def spawn(
        self, key: str, previous: Server | None, spec: DesiredDeployment | None
    ) -> Server:
        """A new server for ``key`` (with its front in dedicated mode), or ``previous`` again."""
        await self._prepare()
        if previous is not None:
            await self._revive(previous)
            return previous
        server = self._new(key, spec, None)
        self.servers[server.name] = server
        try:
            # The front (dedicated mode) and the server start side by side.
            launched = self.launcher.run(server.endpoint, server.body, [self._token_tar(server)])
            if self.scope.mode == "dedicated":
                server.front, _ = await _together(self.fronts.ensure(key), launched)
            else:
                await launched
        except BaseException:
            await asyncio.shield(self._remove(server))
            raise
        log.info("started container %s for %r on port %s", server.name, key,
                 server.endpoint.host_port)  # fmt: skip
        return server

    def alive(self, server: Server) -> bool:
        """Its container runs (and its front, in dedicated mode), as the event stream says."""
        front = server.front
        return self.tracker.running(server.endpoint.id) and (
            front is None or self.tracker.running(front.endpoint.id)
        )

    async def terminate(self, server: Server) -> None:
        """Stop the container (it finishes its requests), remove it and its volume.

        A replaced server is stopped only once its front has nothing in flight to it.
        """
        await self.fronts.drained(server)
        await self._remove(server, graceful=True)

    async def adopt(self, answers: Answers[Server]) -> list[Server]:
        """The servers an earlier agent left: see :mod:`.adoption`."""
        from pilothouse.plugins.docker.adoption import Adoption

        return await Adoption(self, answers).run()

    async def exit_cause(self, server: Server) -> ExitCause:
        """Exit code, OOM flag and log tail of the server (or of its front, if that is down)."""
        front = server.front
        if front is not None and not self.tracker.running(front.endpoint.id):
            cause = await self._cause(front.endpoint)
            return ExitCause(f"is unreachable: its front {cause.summary}", cause.data)
        return await self._cause(server.endpoint)

    async def deliver(self, server: Server, package: PackageRef) -> dict[str, Any]:
        """Put the package archive into the server's volume; the server verifies its sha256."""
        async with self._delivering:  # launches of one package at once pack and copy it once
            archive, sha256 = await self._archive(package)
            name = f"{containers.PACKAGES}/{sha256}.tar.gz"
            if sha256 not in server.delivered:
                wrapped = self._archives / "wrapped" / f"{sha256}.tar"
                await asyncio.to_thread(archives.wrap_file, archive, name, wrapped,
                                        uid=self._uid, gid=self._gid)  # fmt: skip
                await self.calls.put_file(server.name, containers.VOLUME, wrapped)
                server.delivered.add(sha256)
        return {"model_package_id": package.model_package_id,
                "archive": f"{containers.VOLUME}/{name}", "sha256": sha256}  # fmt: skip

    # --- Watching --------------------------------------------------------------------

    async def watch(self, hooks: WatchHooks[Server]) -> None:
        """List this scope's containers, then follow the event stream from before the listing."""
        self.tracker.hooks = hooks
        since = await self.calls.now()
        self.tracker.resync(await self.calls.containers(self.scope.filters(any_mode=True)))
        hooks.synced()
        filters = {"type": ["container"], **self.scope.filters(any_mode=True)}
        await self.calls.events(filters, since, self.tracker.apply)

    # --- Switching -----------------------------------------------------------------

    def fits(self, server: Server, spec: DesiredDeployment) -> bool:
        """Whether the server was started for this very spec (models, resources, env)."""
        return server.spec_digest == labels.spec_digest(spec)

    async def switch(self, key: str, server: Server) -> None:
        """Point the deployment's front at ``server`` (a shared server has no front)."""
        if key in self.fronts.by_key:
            await self.fronts.point(key, server)

    async def release(self, key: str) -> None:
        """Remove the deployment's front and its volume."""
        await self.fronts.remove(key)

    # --- internals ---------------------------------------------------------------------

    def _new(self, key: str, spec: DesiredDeployment | None, front: Front | None) -> Server:
        s = self.settings
        name = self.scope.name(labels.SERVER, key)
        try:
            body = containers.server_body(s, self.scope, key, name, spec)
        except ValueError as exc:
            raise PermanentPluginError(f"deployment {key}: settings.resources: {exc}",
                                       deployment_id=key) from exc  # fmt: skip
        endpoint = Endpoint(name, s.reach, s.agent_host, s.public_host or s.agent_host)
        digest = labels.spec_digest(spec) if spec is not None else None
        return Server(key, secrets.token_urlsafe(24), endpoint, body, digest, front)

    def endpoint(self, name: str) -> Endpoint:
        """A new endpoint named ``name`` with the settings' addresses."""
        s = self.settings
        return Endpoint(name, s.reach, s.agent_host, s.public_host or s.agent_host)

    async def _revive(self, server: Server) -> None:
        if server.front is not None:
            await self.fronts.revive(server.front)
        if await self.launcher.revive(server.endpoint, server.body, [self._token_tar(server)]):
            server.delivered.clear()  # a new volume, perhaps: the packages are put again

    async def _remove(self, server: Server, *, graceful: bool = False) -> None:
        if self.servers.get(server.name) is server:
            del self.servers[server.name]  # first: its death is not a crash
        timeout = self.settings.stop_timeout_s if graceful else None
        await self.calls.remove(server.name, stop_timeout_s=timeout)
        await self.calls.remove_volume(server.name)

    async def _prepare(self) -> None:
        """The network and the image, checked before the first server starts."""
        if self._prepared:
            return
        s = self.settings
        await self.calls.ensure_network(s.network, owner_labels(s.owner))
        try:
            await self.calls.ensure_image(s.image, s.pull)
        except ImageMissing:
            raise  # checked again next time: the image may have been built meanwhile
        self._prepared = True

    async def _cause(self, endpoint: Endpoint) -> ExitCause:
        from pilothouse.agent.errors import PluginError

        try:
            info = await self.calls.inspect(endpoint.name)
            tail = await self.calls.logs(endpoint.name, causes.LOG_LINES)
        except NotFound:
            return causes.removed(endpoint.name)
        except PluginError as exc:
            return causes.unknown(endpoint.name, str(exc))
        death = self.tracker.deaths.get(str(info["Id"]))
        return causes.of_state(endpoint.name, info["State"], death, tail)

    async def _archive(self, package: PackageRef) -> tuple[Path, str]:
        key = (package.model_package_id, package.path)
        if key not in self._packed:
            try:
                self._packed[key] = await asyncio.to_thread(self._archive_blocking, package)
            except PackageError as exc:
                raise PermanentPluginError(
                    f"model package {package.model_package_id!r} cannot be packed: {exc}"
                ) from exc
        return self._packed[key]

    def _archive_blocking(self, package: PackageRef) -> tuple[Path, str]:
        if package.is_dir:
            return archives.packed(package.path, self._archives / package.model_package_id)
        return package.path, package.sha256 or archives.sha256_file(package.path)

    def _token_tar(self, server: Server) -> bytes:
        return archives.one_file(containers.TOKEN_FILE, server.token.encode() + b"\n",
                                 uid=self._uid, gid=self._gid)  # fmt: skip

    def _watched(self, container_id: str) -> Server | None:
        for server in self.servers.values():
            if server.endpoint.id == container_id:
                return server
            if server.front is not None and server.front.endpoint.id == container_id:
                return server
        return None


async def _together(front: Awaitable[Front], launched: Awaitable[None]) -> tuple[Front, None]:
    """Both, concurrently; if one fails the other is cancelled and the failure raised."""
    tasks = (asyncio.ensure_future(front), asyncio.ensure_future(launched))
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return tasks[0].result(), None
