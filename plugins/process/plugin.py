"""The ``process`` plugin: model servers as local subprocesses.

Deployments are served by ``pilothouse serve`` processes on this machine: one
shared server for the whole PE (the default) or one per deployment. Packages
come from the hub (through the agent's package cache, sha256 verified) or, in
standalone mode, from ``plugin_settings.packages``. Replacing a model goes
through the server's admin API, which loads the new model beside the old one
and swaps without dropping a request; a refused replacement leaves the old
model serving and is reported as such.

Status is what users can trust: every check makes a real prediction on the
package's sample rows (or synthesized valid rows) through the public
endpoint. A watcher task restarts a crashed server (which reloads its
deployments itself) and reports ``failing`` then ``passing``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from pilothouse.agent.errors import (
    HubRejectedError,
    HubUnreachableError,
    PermanentPluginError,
    PluginError,
    TemporaryPluginError,
)
from pilothouse.agent.plugin import (
    ActionResult,
    DeploymentReport,
    EnvironmentReport,
    Plugin,
    PluginContext,
)
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.events import Event
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status
from pilothouse.plugins.process import probes, servers
from pilothouse.plugins.process.admin import Refused, ServerAPI
from pilothouse.plugins.process.settings import ProcessPluginSettings

log = logging.getLogger("pilothouse.plugin.process")
SHARED = "shared"


class ProcessPlugin(Plugin):
    """Runs prediction servers as subprocesses of this machine."""

    name = "process"

    def __init__(self, settings: ProcessPluginSettings | None = None) -> None:
        self._given = settings
        self.settings = settings or ProcessPluginSettings()
        self.servers: dict[str, servers.Server] = {}
        self._probes = probes.ProbeRows()
        self._lock = asyncio.Lock()
        self._stopping = False

    # --- lifecycle ------------------------------------------------------------

    async def start(self, ctx: PluginContext) -> None:
        """Read settings and adopt the servers a previous agent left running."""
        await super().start(ctx)
        if self._given is None:
            self.settings = ProcessPluginSettings.parse(ctx.settings)
        self._records = ctx.state_dir / "servers.json"
        for key, rec in (await asyncio.to_thread(servers.load_records, self._records)).items():
            await self._adopt(key, rec)
        await self._save()
        ctx.create_background_task("watch prediction servers", self._watch())

    async def stop(self) -> None:
        """Close clients; stop the servers only if asked to (they survive the agent)."""
        self._stopping = True  # the crash watcher must not restart what stops now
        for server in list(self.servers.values()):
            if self.settings.stop_servers_on_unload:
                await servers.terminate(server)
            if server.api is not None:
                await server.api.close()
        if self.settings.stop_servers_on_unload:
            self.servers.clear()
            await self._save()

    # --- actions ----------------------------------------------------------------

    async def launch(self, spec: DesiredDeployment) -> ActionResult:
        """Load ``spec`` into its server (starting the server if needed) and probe it."""
        return await self._put(spec, "launched")

    async def replace_model(self, spec: DesiredDeployment) -> ActionResult:
        """Swap the model without downtime; report a refusal with the old model serving."""
        return await self._put(spec, "model replaced")

    async def stop_deployment(self, deployment_id: str) -> ActionResult:
        """Unload the deployment (and stop its own server in per-deployment mode)."""
        key = self._key(deployment_id)
        if key in self.servers:
            # A server that is down would restore the deployment when it comes back:
            # bring it up and unload the deployment for real.
            server = await self._server_for(deployment_id)
            assert server.api is not None
            await server.api.delete(deployment_id)
            if self.settings.mode == "per_deployment":
                await self._retire(server)
        return ActionResult(state=DeploymentState.STOPPED, status=Status.UNKNOWN, message="stopped")

    # --- observation --------------------------------------------------------------

    async def deployment_status(self, deployment_id: str) -> DeploymentReport:
        """Probe the deployment with a real prediction."""
        server = self.servers.get(self._key(deployment_id))
        if server is None:
            return DeploymentReport(deployment_id, DeploymentState.STOPPED, Status.UNKNOWN)
        if not server.alive():
            return DeploymentReport(deployment_id, DeploymentState.ERRORED, Status.FAILING,
                                    "its prediction server is not running")  # fmt: skip
        loaded = {d["id"]: d for d in await self._list(server)}
        if deployment_id not in loaded:
            return DeploymentReport(deployment_id, DeploymentState.STOPPED, Status.UNKNOWN)
        return await self._probe(server, loaded[deployment_id])

    async def list_deployments(self) -> list[DeploymentReport]:
        """Everything the live servers serve (for reconcile)."""
        reports: list[DeploymentReport] = []
        for server in self.servers.values():
            if server.alive():
                deps = await self._list(server)
                reports.extend(self._report(server, d, Status.UNKNOWN, "") for d in deps)
        return reports

    async def environment_status(self) -> EnvironmentReport:
        """Failing when a server is down, passing otherwise."""
        down = sorted(k for k, s in self.servers.items() if not s.alive())
        if down:
            return EnvironmentReport(Status.FAILING, f"prediction servers down: {', '.join(down)}")
        return EnvironmentReport(Status.PASSING, f"{len(self.servers)} prediction servers running")

    # --- internals ----------------------------------------------------------------

    async def _put(self, spec: DesiredDeployment, verb: str) -> ActionResult:
        server = await self._server_for(spec.id)
        assert server.api is not None
        body = await self._request_body(spec)
        answer = await server.api.put(spec.id, body)
        if isinstance(answer, Refused):
            return ActionResult(
                state=DeploymentState.READY, status=Status.PASSING, message=answer.message,
                model_package_id=answer.model_package_id, prediction_url=self._url(server, spec.id),
                old_model_in_use=True, data={"refused_model_package_id": spec.model_package_id},
            )  # fmt: skip
        report = await self._probe(server, answer)
        if report.status is not Status.PASSING:
            raise PermanentPluginError(f"{spec.id} loaded but its probe failed: {report.message}",
                                       deployment_id=spec.id)  # fmt: skip
        return ActionResult(
            state=DeploymentState.READY, status=Status.PASSING,
            message=f"{verb} ({spec.model_package_id}); {report.message}",
            model_package_id=spec.model_package_id, prediction_url=self._url(server, spec.id),
            data={"server": server.key, "port": server.port},
        )  # fmt: skip

    async def _request_body(self, spec: DesiredDeployment) -> dict[str, Any]:
        champion = await self._package_ref(spec.model_package_id)
        challengers = [await self._package_ref(c) for c in spec.challenger_ids]
        return {**champion, "challengers": challengers}

    async def _package_ref(self, model_package_id: str) -> dict[str, Any]:
        local = self.settings.packages.get(model_package_id)
        if local is not None:
            key = "package_dir" if await asyncio.to_thread(local.is_dir) else "archive"
            ref = {"model_package_id": model_package_id, key: str(local.resolve())}
        elif self.ctx.fetch_package is not None:
            try:
                fetched = await self.ctx.fetch_package(model_package_id)
            except HubRejectedError as exc:  # unknown package, bad checksum: retrying cannot help
                raise PermanentPluginError(f"cannot fetch {model_package_id}: {exc}") from exc
            except HubUnreachableError as exc:
                raise TemporaryPluginError(f"cannot fetch {model_package_id}: {exc}") from exc
            ref = {"model_package_id": model_package_id, "archive": str(fetched.archive),
                   "sha256": fetched.sha256}  # fmt: skip
        else:
            raise PermanentPluginError(
                f"model package {model_package_id!r} is unknown: not in plugin_settings.packages "
                "and no hub to fetch it from"
            )
        await asyncio.to_thread(
            self._probes.learn, model_package_id, Path(ref.get("package_dir") or ref["archive"])
        )
        return ref

    async def _probe(self, server: servers.Server, dep: dict[str, Any]) -> DeploymentReport:
        assert server.api is not None
        package_id = str(dep.get("model_package_id"))
        rows = self._probes.rows(package_id)
        try:
            answer = await server.api.predict(dep["id"], rows)
        except PluginError as exc:
            return self._report(server, dep, Status.FAILING, f"probe failed: {exc}")
        n = len(answer.get("predictions", []))
        status = Status.PASSING if n == len(rows) else Status.FAILING
        return self._report(server, dep, status, f"probe predicted {n} of {len(rows)} rows")

    def _report(self, server: servers.Server, dep: dict[str, Any], status: Status,
                message: str) -> DeploymentReport:  # fmt: skip
        challengers = tuple(c.get("model_package_id") for c in dep.get("challengers", []))
        return DeploymentReport(
            dep["id"], DeploymentState.READY, status, message,
            model_package_id=dep.get("model_package_id"), challenger_ids=challengers,
            prediction_url=self._url(server, dep["id"]), data={"server": server.key},
        )  # fmt: skip

    async def _list(self, server: servers.Server) -> list[dict[str, Any]]:
        assert server.api is not None
        return await server.api.deployments()

    def _key(self, deployment_id: str) -> str:
        return SHARED if self.settings.mode == "shared" else deployment_id

    def _url(self, server: servers.Server, deployment_id: str) -> str:
        host = self.settings.public_host or self.settings.host
        return f"http://{host}:{server.port}/v1/deployments/{deployment_id}/predict"

    async def _server_for(self, deployment_id: str) -> servers.Server:
        async with self._lock:
            return await self._ensure_running(self._key(deployment_id))

    async def _ensure_running(self, key: str) -> servers.Server:
        """The live server for ``key``; call with the lock held.

        A server of this agent that died is started again on its port and state
        directory and restores what it served (a crash restart, whoever notices
        first). A server new to this agent starts empty, even on an old state
        directory: it must serve only what reconcile and the actions ask for.
        """
        server = self.servers.get(key)
        if server is not None and server.alive():
            return server
        restore = server is not None
        if server is None:
            server = servers.new_server(key, self.settings.host, self.ctx.state_dir / "servers")
            server.api = ServerAPI(f"http://{self.settings.host}:{server.port}", server.token,
                                   self.settings.request_timeout_s)  # fmt: skip
            self.servers[key] = server
        args = [*self.settings.server_args, *([] if restore else ["--no-restore"])]
        await servers.spawn(server, self.settings.host, args, self.settings.ready_timeout_s)
        await self._save()
        return server

    async def _adopt(self, key: str, rec: dict[str, Any]) -> None:
        server = servers.Server(key, int(rec["port"]), str(rec["token"]), Path(rec["state_dir"]),
                                pid=rec.get("pid"))  # fmt: skip
        server.api = ServerAPI(f"http://{self.settings.host}:{server.port}", server.token,
                               self.settings.request_timeout_s)  # fmt: skip
        if server.alive() and await _answers(server):
            self.servers[key] = server
            log.info("adopted prediction server %s (pid %s, port %s)", key, server.pid, server.port)
        else:
            await server.api.close()

    async def _retire(self, server: servers.Server) -> None:
        await servers.terminate(server)
        if server.api is not None:
            await server.api.close()
        self.servers.pop(server.key, None)
        await self._save()

    async def _save(self) -> None:
        await asyncio.to_thread(servers.save_records, self._records, dict(self.servers))

    async def _watch(self) -> None:
        """Restart crashed servers; they reload their deployments from their state dir."""
        failures: dict[str, int] = {}
        while True:
            await asyncio.sleep(self.settings.check_interval_s)
            for key, server in list(self.servers.items()):
                if self._stopping or server.alive() or self._lock.locked():
                    continue
                failures[key] = failures.get(key, 0) + 1
                if await self._restart(server, failures[key]):
                    failures.pop(key, None)

    async def _restart(self, server: servers.Server, attempt: int) -> bool:
        code = server.process.returncode if server.process else None
        self._emit("plugin.server_crashed", Status.FAILING,
                   f"prediction server {server.key!r} exited ({code}); restarting it",
                   {"server": server.key, "exit_code": code, "attempt": attempt})  # fmt: skip
        await asyncio.sleep(min(2 ** (attempt - 1) * 0.5, self.settings.restart_backoff_max_s))
        async with self._lock:
            if self._stopping or self.servers.get(server.key) is not server:
                return True  # stopped, retired or already replaced meanwhile
            try:
                await self._ensure_running(server.key)
            except PluginError as exc:
                log.error("restart of %s failed: %s", server.key, exc)
                return False
        try:
            loaded = [d["id"] for d in await self._list(server)]
        except PluginError as exc:  # died again at once: the next round restarts it
            log.error("restarted server %s does not answer: %s", server.key, exc)
            return False
        self._emit("plugin.server_restarted", Status.PASSING,
                   f"prediction server {server.key!r} restarted, serving {len(loaded)} deployments",
                   {"server": server.key, "deployments": loaded})  # fmt: skip
        return True

    def _emit(self, type_: str, status: Status, message: str, data: dict[str, Any]) -> None:
        self.ctx.emit(
            Event(
                type=type_,
                status=status,
                message=message,
                data=data,
                prediction_environment_id=self.ctx.prediction_environment_id,
            )
        )


async def _answers(server: servers.Server) -> bool:
    assert server.api is not None
    try:
        await server.api.deployments()
    except PluginError:
        return False
    return True
