"""Adoption: a restarted agent takes over the containers an earlier one left, and only those.

The engine is the record: every container with this owner's and PE's labels
is looked at, whatever state the earlier agent died in (even SIGKILLed in the
middle of a launch or a replacement):

- a server that runs is adopted if it answers its admin API with the token in
  its volume — waiting, up to ``ready_timeout_s``, for one that is still
  starting; one that never answers is removed;
- a server that ran and stopped is adopted dead: the crash watch starts it again;
- a server that was created but never started (the agent died before the
  start) is removed;
- of several servers for one key (a replacement cut short), a running one
  that answers wins over a stopped one, the one its front points at over
  another, the newest last; the others are removed, and the front is pointed
  at the winner;
- a front without a server, a volume without a container, and containers of
  the other mode (the PE's mode was changed) are removed.

So after adoption every container of the scope is counted on by the fleet
once: no duplicate is started, no orphan is left.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from pilothouse.agent.errors import PluginError
from pilothouse.plugins.docker import containers, labels
from pilothouse.plugins.docker.containers import Front, Server
from pilothouse.plugins.fleet.runtime import Answers

if TYPE_CHECKING:
    from pilothouse.plugins.docker.runtime import DockerRuntime

log = logging.getLogger("pilothouse.plugin.docker")

_POLL_S = 0.2


class Adoption:
    """One adoption pass over the engine's containers of this scope."""

    def __init__(self, runtime: DockerRuntime, answers: Answers[Server]) -> None:
        self._rt = runtime
        self._answers = answers

    async def run(self) -> list[Server]:
        """Adopt, remove what cannot be adopted; the adopted servers."""
        rt = self._rt
        listed = await rt.calls.containers(rt.scope.filters(any_mode=True))
        rt.tracker.resync(listed)
        mine = [c for c in listed if _label(c, labels.MODE) == rt.scope.mode]
        for c in listed:
            if c not in mine:
                log.warning("removing %s: it was made in %s mode, the PE is now %s",
                            _name(c), _label(c, labels.MODE), rt.scope.mode)  # fmt: skip
                await self._remove(_name(c))
        fronts = await self._fronts([c for c in mine if _label(c, labels.ROLE) == labels.FRONT])
        groups: dict[str, list[dict[str, Any]]] = {}
        for c in mine:
            if _label(c, labels.ROLE) == labels.SERVER:
                groups.setdefault(_label(c, labels.KEY), []).append(c)
        chosen = await asyncio.gather(
            *(self._choose(key, group, fronts.get(key)) for key, group in groups.items())
        )
        adopted = [server for server in chosen if server is not None]
        await self._settle_fronts(fronts, adopted)
        await self._remove_orphan_volumes()
        return adopted

    async def _fronts(self, found: list[dict[str, Any]]) -> dict[str, Front]:
        rt = self._rt
        fronts: dict[str, Front] = {}
        for c in found:
            info = await rt.calls.inspect(_name(c))
            front = Front(_label(c, labels.KEY), rt.endpoint(_name(c)), containers.body_of(info))
            front.endpoint.id = str(info["Id"])
            front.endpoint.host_port = containers.published_port(info)
            front.backend = await rt.fronts.backend_of(front)
            fronts[front.key] = front
        return fronts

    async def _choose(
        self, key: str, group: list[dict[str, Any]], front: Front | None
    ) -> Server | None:
        """The one server of ``key`` to adopt; the others removed."""
        backend = front.backend if front is not None else None
        ordered = sorted(group, key=lambda c: _rank(c, backend), reverse=True)
        winner: Server | None = None
        for c in ordered:
            if winner is None and c.get("State") != "created":
                winner = await self._candidate(key, c, front)
            if winner is None or winner.name != _name(c):
                await self._remove(_name(c))
        return winner

    async def _candidate(self, key: str, c: dict[str, Any], front: Front | None) -> Server | None:
        rt = self._rt
        name = _name(c)
        try:
            info = await rt.calls.inspect(name)
            token = await rt.calls.read_file(name, f"{containers.VOLUME}/{containers.TOKEN_FILE}")
        except (PluginError, KeyError) as exc:
            log.warning("not adopting %s: its token cannot be read (%s)", name, exc)
            return None
        server = Server(key, token.decode().strip(), rt.endpoint(name), containers.body_of(info),
                        _label(c, labels.SPEC) or None, front)  # fmt: skip
        server.endpoint.id = str(info["Id"])
        server.endpoint.host_port = containers.published_port(info)
        server.endpoint.grpc_host_port = containers.published_port(info, containers.GRPC_PORT)
        if info["State"]["Running"] and not await self._answered(server):
            log.warning("not adopting %s: it runs but does not answer its admin API", name)
            return None
        rt.servers[name] = server
        return server

    async def _answered(self, server: Server) -> bool:
        """Whether a running server answers, waiting for one that is still starting."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._rt.settings.ready_timeout_s
        while True:
            if await self._answers(server):
                return True
            if loop.time() > deadline or not self._rt.tracker.running(server.endpoint.id):
                return False
            await asyncio.sleep(_POLL_S)

    async def _settle_fronts(self, fronts: dict[str, Front], adopted: list[Server]) -> None:
        rt = self._rt
        by_key = {s.key: s for s in adopted}
        for key, front in fronts.items():
            server = by_key.get(key)
            if server is None:
                log.warning("removing front %s: its deployment has no server", front.endpoint.name)
                await self._remove(front.endpoint.name)
                continue
            rt.fronts.by_key[key] = front
            server.front = front
            running = rt.tracker.running(front.endpoint.id)
            if running and rt.alive(server) and front.backend != server.backend_url:
                await rt.fronts.point(key, server)  # a replacement cut short: finish it
        for server in adopted:
            if rt.scope.mode == "dedicated" and server.front is None:
                await rt.fronts.ensure(server.key)  # its front was removed while no agent ran
                if rt.alive(server):
                    await rt.fronts.point(server.key, server)

    async def _remove_orphan_volumes(self) -> None:
        rt = self._rt
        names = {c.endpoint.name for c in rt.servers.values()}
        names |= {f.endpoint.name for f in rt.fronts.by_key.values()}
        for volume in await rt.calls.volumes(rt.scope.filters(any_mode=True)):
            if volume["Name"] not in names:
                log.warning("removing volume %s: its container is gone", volume["Name"])
                await rt.calls.remove_volume(volume["Name"])

    async def _remove(self, name: str) -> None:
        await self._rt.calls.remove(name, stop_timeout_s=None)
        await self._rt.calls.remove_volume(name)


def _label(c: dict[str, Any], key: str) -> str:
    return str((c.get("Labels") or {}).get(key, ""))


def _name(c: dict[str, Any]) -> str:
    return str((c.get("Names") or ["/?"])[0]).lstrip("/")


def _rank(c: dict[str, Any], backend: str | None) -> tuple[bool, bool, int]:
    """Running first, then pointed at by the front, then newest."""
    pointed = (
        backend is not None and backend == f"http://{labels.alias(_name(c))}:{containers.PORT}"
    )
    return c.get("State") == "running", pointed, int(c.get("Created") or 0)
