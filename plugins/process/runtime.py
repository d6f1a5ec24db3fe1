"""The process runtime: prediction servers as subprocesses of this machine.

The four things the fleet kit cannot know about processes — spawn, alive,
terminate, adopt — and the two small ones that follow (why a process ended;
packages need no delivery, the server reads the agent's disk). What runs is
kept in ``servers.json`` after every change, so that a restarted agent finds
its servers again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.plugins.fleet import ExitCause, PackageRef
from pilothouse.plugins.fleet.runtime import Answers
from pilothouse.plugins.process import servers
from pilothouse.plugins.process.servers import Server
from pilothouse.plugins.process.settings import ProcessPluginSettings


class ProcessRuntime:
    """Spawns, watches, stops and adopts ``pilothouse serve`` processes."""

    def __init__(self, settings: ProcessPluginSettings, state_dir: Path) -> None:
        self._settings = settings
        self._state_root = state_dir / "servers"
        self._records_path = state_dir / "servers.json"
        self._records: dict[str, Server] = {}
        self._saving = asyncio.Lock()  # servers of several keys start at once

    async def spawn(
        self, key: str, previous: Server | None, spec: DesiredDeployment | None
    ) -> Server:
        """Start a new server, or the dead ``previous`` again on its port and state.

        ``spec`` is not used: a process takes what the machine has (no limits).
        """
        s = self._settings
        server = previous or servers.new_server(
            key, s.host, s.public_host, self._state_root, grpc=s.grpc
        )
        restore = [] if previous is not None else ["--no-restore"]
        await servers.start_process(server, [*s.server_args, *restore])
        self._records[key] = server
        await self._save()
        return server

    def alive(self, server: Server) -> bool:
        """Whether its process runs."""
        return server.alive()

    async def terminate(self, server: Server) -> None:
        """SIGTERM, then SIGKILL; and forget its record."""
        await servers.terminate(server)
        if self._records.get(server.key) is server:
            del self._records[server.key]
            await self._save()

    async def adopt(self, answers: Answers[Server]) -> list[Server]:
        """The recorded servers that still run and answer with their token."""
        records = await asyncio.to_thread(servers.load_records, self._records_path)
        self._records = {}
        for key, rec in records.items():
            server = self._recorded(key, rec)
            if server.alive() and await answers(server):
                self._records[key] = server
        await self._save()
        return list(self._records.values())

    async def exit_cause(self, server: Server) -> ExitCause:
        """The exit code or signal, when the process was ours."""
        summary, code = servers.exit_summary(server)
        return ExitCause(summary, {"exit_code": code, "log": str(server.log_path)})

    async def deliver(self, server: Server, package: PackageRef) -> dict[str, Any]:
        """Nothing to copy: the server reads the agent's disk."""
        return package.local_body()

    def _recorded(self, key: str, rec: dict[str, Any]) -> Server:
        s = self._settings
        grpc_port = rec.get("grpc_port")
        return Server(key, s.host, int(rec["port"]), str(rec["token"]), Path(rec["state_dir"]),
                      s.public_host, pid=rec.get("pid"),
                      grpc_port=int(grpc_port) if grpc_port is not None else None)  # fmt: skip

    async def _save(self) -> None:
        async with self._saving:
            await asyncio.to_thread(servers.save_records, self._records_path, dict(self._records))
