"""A complete server-running plugin, less its runtime: subclass it and say how servers run.

:class:`FleetPlugin` implements every action and observation of the plugin
interface on the kit — :class:`~pilothouse.plugins.fleet.servers.Servers`,
:class:`~pilothouse.plugins.fleet.deployments.Deployments`,
:class:`~pilothouse.plugins.fleet.crashwatch.CrashWatch` — so that a plugin
for a new infrastructure writes a settings model (extending
:class:`~pilothouse.plugins.fleet.settings.FleetSettings`) and a
:class:`~pilothouse.plugins.fleet.runtime.Runtime`::

    class DockerPlugin(FleetPlugin[Container, DockerSettings]):
        name = "docker"
        settings_model = DockerSettings

        async def make_runtime(self, ctx: PluginContext) -> DockerRuntime:
            return await DockerRuntime.connect(self.settings, ctx)

At start it adopts the servers an earlier agent left running and starts the
crash watch — and, for a runtime whose infrastructure tells of changes
(:class:`~pilothouse.plugins.fleet.runtime.Watching`), the
:class:`~pilothouse.plugins.fleet.watch.Watcher` that follows them; at
unload it closes its clients and, only if ``stop_servers_on_unload``, stops
the servers (by default they keep serving and the next agent adopts them).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, Generic, TypeVar, cast

from pilothouse.agent.plugin import (
    ActionResult,
    DeploymentReport,
    EnvironmentReport,
    Plugin,
    PluginContext,
)
from pilothouse.foundation.aio.backoff import Backoff
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.events import Event
from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.plugins.fleet.crashwatch import CrashWatch
from pilothouse.plugins.fleet.deployments import Deployments
from pilothouse.plugins.fleet.packages import PackageSource
from pilothouse.plugins.fleet.routing import Routing
from pilothouse.plugins.fleet.runtime import H, Runtime, Watching
from pilothouse.plugins.fleet.servers import Servers
from pilothouse.plugins.fleet.settings import FleetSettings
from pilothouse.plugins.fleet.watch import Watcher

S = TypeVar("S", bound=FleetSettings)

RESTART_BACKOFF_INITIAL_S = 0.5
"""First delay before a crashed server is started again; doubles up to the setting's maximum."""
RECONNECT_BACKOFF_INITIAL_S = 0.2
"""First delay before a broken change stream is opened again; doubles up to the same maximum."""


class FleetPlugin(Plugin, Generic[H, S]):
    """A plugin that serves deployments from prediction servers run by a :class:`Runtime`."""

    def __init__(self, settings: S | None = None) -> None:
        self._given = settings
        self._fleet: Servers[H] | None = None

    @abc.abstractmethod
    async def make_runtime(self, ctx: PluginContext) -> Runtime[H]:
        """The runtime of this infrastructure (``self.settings`` is set).

        Raise ``PluginNotReadyError`` while the infrastructure cannot be reached.
        """

    # --- lifecycle ----------------------------------------------------------------

    async def start(self, ctx: PluginContext) -> None:
        """Read settings, connect the runtime, adopt servers left running, watch for crashes."""
        await super().start(ctx)
        self.settings: S = self._given or ctx.typed_settings(self._settings_model())
        s = self.settings
        runtime = await self.make_runtime(ctx)
        self._fleet = Servers(runtime, Routing(s.mode), ready_timeout_s=s.ready_timeout_s,
                              request_timeout_s=s.request_timeout_s)  # fmt: skip
        self.deployments = Deployments(
            self._fleet, PackageSource(s.packages, ctx.fetch_package),
            retire_idle_shared=s.stop_idle_shared_server,
        )  # fmt: skip
        await self._fleet.adopt()
        self.crash_watch = CrashWatch(
            self.deployments, interval_s=s.check_interval_s,
            backoff=Backoff(RESTART_BACKOFF_INITIAL_S, s.restart_backoff_max_s),
            emit=self._emit, report=ctx.report,
        )  # fmt: skip
        await ctx.start_task("watch prediction servers", self.crash_watch.run)
        if isinstance(runtime, Watching):
            watcher = Watcher(
                runtime, self._fleet, self.crash_watch, emit=self._emit,
                backoff=Backoff(RECONNECT_BACKOFF_INITIAL_S, s.restart_backoff_max_s),
            )  # fmt: skip
            await ctx.start_task(f"follow {runtime.infrastructure}", watcher.run)

    async def stop(self) -> None:
        """Close clients; stop the servers only if ``stop_servers_on_unload``."""
        if self._fleet is not None:
            await self._fleet.close(terminate=self.settings.stop_servers_on_unload)

    @property
    def servers(self) -> dict[str, H]:
        """The servers of this PE by key (``shared`` or a deployment id)."""
        return self._fleet.by_key if self._fleet is not None else {}

    # --- actions -----------------------------------------------------------------

    async def launch(self, spec: DesiredDeployment) -> ActionResult:
        """Load ``spec`` into its server (starting the server if needed) and probe it."""
        return await self.deployments.put(spec, "launched")

    async def replace_model(self, spec: DesiredDeployment) -> ActionResult:
        """Swap the model without downtime; a refusal leaves the old model serving."""
        return await self.deployments.put(spec, "model replaced")

    async def stop_deployment(self, deployment_id: str) -> ActionResult:
        """Unload the deployment (and stop its own server in dedicated mode)."""
        return await self.deployments.remove(deployment_id)

    # --- observation ---------------------------------------------------------------

    async def deployment_status(self, deployment_id: str) -> DeploymentReport:
        """Probe the deployment with a real prediction."""
        return await self.deployments.status(deployment_id)

    async def list_deployments(self) -> list[DeploymentReport]:
        """Everything the live servers serve (for reconcile)."""
        return await self.deployments.list_all()

    async def environment_status(self) -> EnvironmentReport:
        """Failing when a server is down, passing otherwise."""
        return self.deployments.environment()

    async def statistics(
        self,
        deployment_id: str,
        *,
        server: str | None = None,
        associations_after: int | None = 0,
    ) -> Mapping[str, Any] | None:
        """The cumulative counters of the server that serves the deployment."""
        return await self.deployments.statistics(deployment_id, server, associations_after)

    # --- internals -----------------------------------------------------------------

    def _settings_model(self) -> type[S]:
        model = self.settings_model
        if model is None or not issubclass(model, FleetSettings):
            raise TypeError(f"{type(self).__name__}.settings_model must extend FleetSettings")
        return cast("type[S]", model)

    def _emit(self, type_: str, status: Status, message: str, data: dict[str, Any]) -> None:
        pe = self.ctx.prediction_environment_id
        self.ctx.emit(Event(type=type_, status=status, message=message, data=data,
                            prediction_environment_id=pe))  # fmt: skip
