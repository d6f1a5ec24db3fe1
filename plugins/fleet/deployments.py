"""Deployments on the fleet's servers: placed, replaced and removed through the admin API.

A deployment is placed by one ``PUT /admin/deployments/{id}`` on its server,
with every model package (champion and challengers) made readable by that
server first. The server loads a new model beside the old one, warms it and
swaps without dropping a request; a model it refuses leaves the old one
serving, and is reported as such (``old_model_in_use``), never as an outage.
A placed deployment is then probed (:mod:`~pilothouse.plugins.fleet.probes`):
a launch whose probe fails is a failed launch.

In dedicated mode on a :class:`~pilothouse.plugins.fleet.runtime.Switching`
runtime, a change the running server does not fit (another model, other
resources) is made by a new server instead: started beside the old one, given
the deployment, probed, then clients are switched to it and only then is the
old one removed. If the new server fails on the way, it is removed and the old
one keeps serving — reported like a refused replacement (``old_model_in_use``).

Every placed spec is remembered (:attr:`Deployments.placed`), so a server that
comes back without its state (re-created after it was removed) is given its
deployments again (:meth:`Deployments.restore`).

The status of a deployment is the same wherever it is asked for — an action,
a health check, the crash watch, reconcile — because all of them ask
:meth:`Deployments.status`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Generic

from pilothouse.agent.errors import PermanentPluginError
from pilothouse.agent.plugin import ActionResult, DeploymentReport, EnvironmentReport
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status
from pilothouse.plugins.fleet import probes
from pilothouse.plugins.fleet.admin import Refused
from pilothouse.plugins.fleet.packages import PackageSource
from pilothouse.plugins.fleet.probes import ProbeRows
from pilothouse.plugins.fleet.runtime import ExitCause, H
from pilothouse.plugins.fleet.servers import Servers

log = logging.getLogger("pilothouse.plugin.fleet")


class Deployments(Generic[H]):
    """The deployments of one PE, over its :class:`~pilothouse.plugins.fleet.servers.Servers`."""

    def __init__(
        self, servers: Servers[H], packages: PackageSource, *, retire_idle_shared: bool = False
    ) -> None:
        self.servers = servers
        self.packages = packages
        self.probe_rows = ProbeRows(packages)
        self.placed: dict[str, DesiredDeployment] = {}
        """The last spec placed (or found served) per deployment."""
        self._retire_idle_shared = retire_idle_shared

    # --- actions ---------------------------------------------------------------------

    async def put(self, spec: DesiredDeployment, verb: str) -> ActionResult:
        """Load or replace ``spec`` on its server (started if needed), then probe it."""
        if self._replaced_beside(spec):
            return await self._put_beside(spec, verb)
        server = await self.servers.for_deployment(spec.id, spec)
        assert server.api is not None
        answer = await server.api.put(spec.id, await self._body(server, spec))
        if isinstance(answer, Refused):
            return _refused(server, spec, answer.message, answer.model_package_id)
        self.servers.served.setdefault(server.key, set()).add(spec.id)
        self.placed[spec.id] = spec
        report = await self._probe(server, answer)
        if report.status is not Status.PASSING:
            raise PermanentPluginError(f"{spec.id} loaded but its probe failed: {report.message}",
                                       deployment_id=spec.id)  # fmt: skip
        return _placed(server, spec, verb, report.message)

    async def remove(self, deployment_id: str) -> ActionResult:
        """Unload the deployment, and retire its server if it was dedicated to it."""
        if self.servers.of(deployment_id) is not None:
            # A server that is down would restore the deployment when it comes back:
            # bring it up and unload the deployment for real.
            server = await self.servers.for_deployment(deployment_id)
            assert server.api is not None
            await server.api.delete(deployment_id)
            served = self.servers.served.setdefault(server.key, set())
            served.discard(deployment_id)
            if self.servers.routing.dedicated or (self._retire_idle_shared and not served):
                await self._retire_if_idle(server)
        self.placed.pop(deployment_id, None)
        return ActionResult(state=DeploymentState.STOPPED, status=Status.UNKNOWN, message="stopped")

    async def restore(self, server: H, expected: set[str]) -> None:
        """After a restart: place again what ``server`` served (``expected``) but lost."""
        served = {str(d["id"]) for d in await self.list_server(server)}
        for deployment_id in sorted(expected - served):
            spec = self.placed.get(deployment_id)
            if spec is None:
                continue  # not placed by this agent and not seen served: reconcile decides
            log.warning("prediction server %s came back without %s: placing it again",
                        server.key, deployment_id)  # fmt: skip
            assert server.api is not None
            answer = await server.api.put(deployment_id, await self._body(server, spec))
            if not isinstance(answer, Refused):
                self.servers.served.setdefault(server.key, set()).add(deployment_id)

    # --- observation ---------------------------------------------------------------------

    async def status(self, deployment_id: str) -> DeploymentReport:
        """Probe the deployment with a real prediction (``stopped`` if nothing serves it)."""
        server = self.servers.of(deployment_id)
        if server is None:
            return DeploymentReport(deployment_id, DeploymentState.STOPPED, Status.UNKNOWN)
        if not self.servers.runtime.alive(server):
            return self.down(deployment_id, server, await self.servers.runtime.exit_cause(server))
        loaded = {d["id"]: d for d in await self.list_server(server)}
        if deployment_id not in loaded:
            return DeploymentReport(deployment_id, DeploymentState.STOPPED, Status.UNKNOWN)
        return await self._probe(server, loaded[deployment_id])

    async def statistics(
        self, deployment_id: str, server_id: str | None, associations_after: int | None
    ) -> dict[str, Any] | None:
        """The serving server's cumulative counters of the deployment (None: not served)."""
        server = self.servers.of(deployment_id)
        if server is None or server.api is None or not self.servers.runtime.alive(server):
            return None
        return await server.api.statistics(deployment_id, server_id, associations_after)

    def down(self, deployment_id: str, server: H, cause: ExitCause) -> DeploymentReport:
        """The status of a deployment whose server is down, for ``cause``."""
        return DeploymentReport(
            deployment_id, DeploymentState.ERRORED, Status.FAILING,
            f"its prediction server {server.key!r} {cause.summary}",
            data={"server": server.key, **cause.data},
        )  # fmt: skip

    async def list_all(self) -> list[DeploymentReport]:
        """Everything the live servers serve (for reconcile); not probed."""
        reports: list[DeploymentReport] = []
        for server in list(self.servers.by_key.values()):
            if self.servers.runtime.alive(server):
                served = await self.list_server(server)
                reports.extend(_report(server, d, Status.UNKNOWN, "") for d in served)
        return reports

    def environment(self) -> EnvironmentReport:
        """Failing when the infrastructure or a server is down, passing otherwise."""
        if self.servers.outage is not None:
            return EnvironmentReport(Status.FAILING, f"unreachable: {self.servers.outage}")
        alive = self.servers.runtime.alive
        down = sorted(k for k, s in self.servers.by_key.items() if not alive(s))
        if down:
            return EnvironmentReport(Status.FAILING, f"prediction servers down: {', '.join(down)}")
        count = len(self.servers.by_key)
        return EnvironmentReport(Status.PASSING, f"{count} prediction servers running")

    # --- replacement beside -------------------------------------------------------------

    def _replaced_beside(self, spec: DesiredDeployment) -> bool:
        """Whether ``spec`` needs a new server: dedicated, switchable, and the old one unfit."""
        switching = self.servers.switching
        if not self.servers.routing.dedicated or switching is None:
            return False
        server = self.servers.of(spec.id)
        return (
            server is not None
            and self.servers.runtime.alive(server)
            and spec.id in self.servers.served.get(server.key, set())
            and not switching.fits(server, spec)
        )

    async def _put_beside(self, spec: DesiredDeployment, verb: str) -> ActionResult:
        """A new server with ``spec``; clients switched to it once it answers a probe."""
        servers = self.servers
        key = servers.routing.key(spec.id)
        async with servers.lock(key):
            new = await servers.start_beside(key, spec)
            try:
                message = await self._place_new(new, spec)
                if message is not None:  # the new server failed: the old one keeps serving
                    await servers.discard(new)
                    kept = servers.by_key.get(key, new)
                    return _refused(kept, spec, message, self._serving_package(spec.id))
                old = await servers.switch(key, new, {spec.id})
            except BaseException:
                await asyncio.shield(servers.discard(new))
                raise
            self.placed[spec.id] = spec
        if old is not None:
            await servers.discard(old)
        return _placed(new, spec, verb, "probe passed on a new server; the old one is removed")

    async def _place_new(self, server: H, spec: DesiredDeployment) -> str | None:
        """Place ``spec`` on a new server and probe it: None if it passes, else why not."""
        assert server.api is not None
        try:
            answer = await server.api.put(spec.id, await self._body(server, spec))
        except PermanentPluginError as exc:
            refused = spec.model_package_id
            return f"the new server refused {refused}, the old one keeps serving: {exc}"
        if isinstance(answer, Refused):
            return answer.message
        report = await self._probe(server, answer)
        if report.status is not Status.PASSING:
            return f"the new server failed its probe, the old one keeps serving: {report.message}"
        return None

    def _serving_package(self, deployment_id: str) -> str | None:
        placed = self.placed.get(deployment_id)
        return placed.model_package_id if placed is not None else None

    async def _retire_if_idle(self, server: H) -> None:
        async with self.servers.lock(server.key):
            if self.servers.by_key.get(server.key) is server and not self.servers.served.get(
                server.key
            ):
                await self.servers.retire(server)

    # --- internals -------------------------------------------------------------------------

    async def _body(self, server: H, spec: DesiredDeployment) -> dict[str, Any]:
        champion = await self._package(server, spec.model_package_id)
        challengers = [await self._package(server, c) for c in spec.challenger_ids]
        mirror = spec.settings.challengers.mirror_percent
        return {**champion, "challengers": challengers, "mirror_percent": mirror}

    async def _package(self, server: H, model_package_id: str) -> dict[str, Any]:
        package = await self.packages.resolve(model_package_id)
        await self.probe_rows.learn(package)
        return await self.servers.runtime.deliver(server, package)

    async def _probe(self, server: H, served: dict[str, Any]) -> DeploymentReport:
        assert server.api is not None
        rows = await self.probe_rows.rows(str(served.get("model_package_id")))
        status, message = await probes.probe(server.api, served["id"], rows)
        return _report(server, served, status, message)

    async def list_server(self, server: H) -> list[dict[str, Any]]:
        """What one live server serves, as its admin API says (and remember it)."""
        assert server.api is not None
        served = await server.api.deployments()
        self.servers.served[server.key] = {str(d["id"]) for d in served}
        for d in served:  # an adopted deployment: what it runs is what the server says
            if str(d["id"]) not in self.placed and d.get("model_package_id"):
                self.placed[str(d["id"])] = _found(d)
        return served


def _report(server: H, served: dict[str, Any], status: Status, message: str) -> DeploymentReport:
    challengers = tuple(c.get("model_package_id") for c in served.get("challengers", []))
    return DeploymentReport(
        served["id"], DeploymentState.READY, status, message,
        model_package_id=served.get("model_package_id"), challenger_ids=challengers,
        prediction_url=_url(server, served["id"]), grpc_target=server.grpc_target,
        data={"server": server.key},
    )  # fmt: skip


def _placed(server: H, spec: DesiredDeployment, verb: str, probe: str) -> ActionResult:
    return ActionResult(
        state=DeploymentState.READY, status=Status.PASSING,
        message=f"{verb} ({spec.model_package_id}); {probe}",
        model_package_id=spec.model_package_id, prediction_url=_url(server, spec.id),
        grpc_target=server.grpc_target, data={"server": server.key, "url": server.public_url},
    )  # fmt: skip


def _refused(server: H, spec: DesiredDeployment, message: str, serving: str | None) -> ActionResult:
    return ActionResult(
        state=DeploymentState.READY, status=Status.PASSING, message=message,
        model_package_id=serving, prediction_url=_url(server, spec.id),
        grpc_target=server.grpc_target, old_model_in_use=True,
        data={"refused_model_package_id": spec.model_package_id},
    )  # fmt: skip


def _found(served: dict[str, Any]) -> DesiredDeployment:
    challengers = tuple(str(c["model_package_id"]) for c in served.get("challengers", []))
    return DesiredDeployment(id=str(served["id"]), model_package_id=str(served["model_package_id"]),
                             challenger_ids=challengers)  # fmt: skip


def _url(server: H, deployment_id: str) -> str:
    return f"{server.public_url}/v1/deployments/{deployment_id}/predict"
