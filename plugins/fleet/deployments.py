"""Deployments on the fleet's servers: placed, replaced and removed through the admin API.

A deployment is placed by one ``PUT /admin/deployments/{id}`` on its server,
with every model package (champion and challengers) made readable by that
server first. The server loads a new model beside the old one, warms it and
swaps without dropping a request; a model it refuses leaves the old one
serving, and is reported as such (``old_model_in_use``), never as an outage.
A placed deployment is then probed (:mod:`~pilothouse.plugins.fleet.probes`):
a launch whose probe fails is a failed launch.

The status of a deployment is the same wherever it is asked for — an action,
a health check, the crash watch, reconcile — because all of them ask
:meth:`Deployments.status`.
"""

from __future__ import annotations

from typing import Any, Generic

from pilothouse.agent.errors import PermanentPluginError
from pilothouse.agent.plugin import ActionResult, DeploymentReport, EnvironmentReport
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status
from pilothouse.plugins.fleet import probes
from pilothouse.plugins.fleet.admin import Refused
from pilothouse.plugins.fleet.packages import PackageSource
from pilothouse.plugins.fleet.probes import ProbeRows
from pilothouse.plugins.fleet.runtime import H
from pilothouse.plugins.fleet.servers import Servers


class Deployments(Generic[H]):
    """The deployments of one PE, over its :class:`~pilothouse.plugins.fleet.servers.Servers`."""

    def __init__(self, servers: Servers[H], packages: PackageSource) -> None:
        self.servers = servers
        self.packages = packages
        self.probe_rows = ProbeRows(packages)

    # --- actions ---------------------------------------------------------------------

    async def put(self, spec: DesiredDeployment, verb: str) -> ActionResult:
        """Load or replace ``spec`` on its server (started if needed), then probe it."""
        server = await self.servers.for_deployment(spec.id)
        assert server.api is not None
        answer = await server.api.put(spec.id, await self._body(server, spec))
        if isinstance(answer, Refused):
            return ActionResult(
                state=DeploymentState.READY, status=Status.PASSING, message=answer.message,
                model_package_id=answer.model_package_id, prediction_url=_url(server, spec.id),
                old_model_in_use=True, data={"refused_model_package_id": spec.model_package_id},
            )  # fmt: skip
        self.servers.served.setdefault(server.key, set()).add(spec.id)
        report = await self._probe(server, answer)
        if report.status is not Status.PASSING:
            raise PermanentPluginError(f"{spec.id} loaded but its probe failed: {report.message}",
                                       deployment_id=spec.id)  # fmt: skip
        return ActionResult(
            state=DeploymentState.READY, status=Status.PASSING,
            message=f"{verb} ({spec.model_package_id}); {report.message}",
            model_package_id=spec.model_package_id, prediction_url=_url(server, spec.id),
            data={"server": server.key, "url": server.public_url},
        )  # fmt: skip

    async def remove(self, deployment_id: str) -> ActionResult:
        """Unload the deployment, and retire its server if it was dedicated to it."""
        if self.servers.of(deployment_id) is not None:
            # A server that is down would restore the deployment when it comes back:
            # bring it up and unload the deployment for real.
            server = await self.servers.for_deployment(deployment_id)
            assert server.api is not None
            await server.api.delete(deployment_id)
            self.servers.served.get(server.key, set()).discard(deployment_id)
            if self.servers.routing.dedicated:
                await self.servers.retire(server)
        return ActionResult(state=DeploymentState.STOPPED, status=Status.UNKNOWN, message="stopped")

    # --- observation ---------------------------------------------------------------------

    async def status(self, deployment_id: str) -> DeploymentReport:
        """Probe the deployment with a real prediction (``stopped`` if nothing serves it)."""
        server = self.servers.of(deployment_id)
        if server is None:
            return DeploymentReport(deployment_id, DeploymentState.STOPPED, Status.UNKNOWN)
        if not self.servers.runtime.alive(server):
            cause = await self.servers.runtime.exit_cause(server)
            return DeploymentReport(
                deployment_id, DeploymentState.ERRORED, Status.FAILING,
                f"its prediction server {server.key!r} {cause.summary}",
                data={"server": server.key, **cause.data},
            )  # fmt: skip
        loaded = {d["id"]: d for d in await self.list_server(server)}
        if deployment_id not in loaded:
            return DeploymentReport(deployment_id, DeploymentState.STOPPED, Status.UNKNOWN)
        return await self._probe(server, loaded[deployment_id])

    async def list_all(self) -> list[DeploymentReport]:
        """Everything the live servers serve (for reconcile); not probed."""
        reports: list[DeploymentReport] = []
        for server in list(self.servers.by_key.values()):
            if self.servers.runtime.alive(server):
                served = await self.list_server(server)
                reports.extend(_report(server, d, Status.UNKNOWN, "") for d in served)
        return reports

    def environment(self) -> EnvironmentReport:
        """Failing when a server is down, passing otherwise."""
        alive = self.servers.runtime.alive
        down = sorted(k for k, s in self.servers.by_key.items() if not alive(s))
        if down:
            return EnvironmentReport(Status.FAILING, f"prediction servers down: {', '.join(down)}")
        count = len(self.servers.by_key)
        return EnvironmentReport(Status.PASSING, f"{count} prediction servers running")

    # --- internals -------------------------------------------------------------------------

    async def _body(self, server: H, spec: DesiredDeployment) -> dict[str, Any]:
        champion = await self._package(server, spec.model_package_id)
        challengers = [await self._package(server, c) for c in spec.challenger_ids]
        return {**champion, "challengers": challengers}

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
        return served


def _report(server: H, served: dict[str, Any], status: Status, message: str) -> DeploymentReport:
    challengers = tuple(c.get("model_package_id") for c in served.get("challengers", []))
    return DeploymentReport(
        served["id"], DeploymentState.READY, status, message,
        model_package_id=served.get("model_package_id"), challenger_ids=challengers,
        prediction_url=_url(server, served["id"]), data={"server": server.key},
    )  # fmt: skip


def _url(server: H, deployment_id: str) -> str:
    return f"{server.public_url}/v1/deployments/{deployment_id}/predict"
