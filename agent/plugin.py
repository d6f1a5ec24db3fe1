"""The plugin interface: the one async contract between the agent and infrastructure.

A plugin turns actions (launch, replace_model, stop, relaunch) into work on
some infrastructure and reports what runs there. Its lifecycle follows Home
Assistant's integrations: :meth:`Plugin.start` gets a :class:`PluginContext`
(identity, settings, a place for files, a way to emit events, to report what
it sees of a deployment at once, and to run supervised background tasks),
:meth:`Plugin.stop` unloads it, and the agent then cancels every background
task the plugin started.

Between health rounds a plugin that notices something (a container died, a
server crashed and came back) calls :meth:`PluginContext.report`: the finding
goes straight to that deployment's worker, like a health check's, and the
deployment's health and state follow it at once.

Plugins report failures with :mod:`pilothouse.agent.errors`: a ``TemporaryPluginError``
is retried with backoff, a ``PermanentPluginError`` is not. Anything else a
plugin raises is treated as a bug in the plugin: reported, not retried.

Plugins are found through the ``pilothouse.plugins`` entry-point group; the
built-ins register the same way. Tests pass an explicit :class:`PluginRegistry`.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel

from pilothouse.agent.errors import PluginNotFoundError
from pilothouse.foundation.aio.supervisor import RestartPolicy, Supervisor, TaskFailure
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.events import Event
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status
from pilothouse.foundation.settings import validate

ENTRY_POINT_GROUP = "pilothouse.plugins"


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an action achieved."""

    state: DeploymentState
    status: Status = Status.PASSING
    message: str = ""
    model_package_id: str | None = None
    prediction_url: str | None = None
    grpc_target: str | None = None
    """Where gRPC clients reach the deployment (``host:port``), if its server speaks gRPC."""
    data: dict[str, Any] = field(default_factory=dict)
    old_model_in_use: bool = False
    """Set by a failed replacement that left the previous model serving."""


@dataclass(frozen=True, slots=True)
class DeploymentReport:
    """What the plugin sees of one deployment right now."""

    deployment_id: str
    state: DeploymentState
    status: Status
    message: str = ""
    model_package_id: str | None = None
    challenger_ids: tuple[str, ...] = ()
    prediction_url: str | None = None
    grpc_target: str | None = None
    """Where gRPC clients reach the deployment (``host:port``), if its server speaks gRPC."""
    data: dict[str, Any] = field(default_factory=dict)
    generation: int | None = None
    """The generation of the spec that runs, when the plugin knows it: it proves that
    an action a crash of the agent interrupted did complete (reconcile)."""


@dataclass(frozen=True, slots=True)
class EnvironmentReport:
    """What the plugin sees of the whole prediction environment."""

    status: Status
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[Event], None]
PackageFetcher = Callable[[str], Awaitable["FetchedPackage"]]
SettingsModel = TypeVar("SettingsModel", bound=BaseModel)
ReportSink = Callable[[DeploymentReport], None]
TaskBody = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PackageToken:
    """A read-only package token of this PE, as the hub issued it (the secret: ``token``)."""

    id: str
    token: str


class PackageTokens(Protocol):
    """Issues and revokes this PE's read-only package tokens at the hub.

    A package token may only download the archives of the model packages the PE's
    deployments use: what a plugin hands to infrastructure that fetches packages
    itself (a Kubernetes pod's init container) instead of the agent's own token.
    """

    async def issue(self) -> PackageToken:
        """A new package token; ``HubUnreachableError`` when the hub does not answer."""
        ...

    async def revoke(self, token_id: str) -> None:
        """Revoke one (an earlier one the plugin replaced); a gone one is no error."""
        ...


@dataclass(frozen=True, slots=True)
class FetchedPackage:
    """A model package archive on local disk, its sha256 verified."""

    model_package_id: str
    archive: Path
    sha256: str


@dataclass(slots=True)
class PluginContext:
    """Everything a plugin is handed at start; owned by the agent."""

    prediction_environment_id: str
    settings: Mapping[str, Any]
    state_dir: Path
    emit: EventSink
    logger: logging.Logger
    fetch_package: PackageFetcher | None = None
    """Download a model package by id (from the hub, cached); None in standalone mode."""
    package_tokens: PackageTokens | None = None
    """Issue and revoke the PE's read-only package tokens (the hub); None in standalone mode."""
    reports: ReportSink | None = None
    """Where :meth:`report` delivers (the agent's deployment workers); None: nowhere."""
    task_policy: RestartPolicy = field(default_factory=RestartPolicy)
    """How background tasks are restarted, and when a crash loop ends them."""
    _supervisor: Supervisor | None = None
    _crashed: dict[str, str] = field(default_factory=dict)

    def report(self, report: DeploymentReport) -> None:
        """Push what the plugin sees of one deployment into its worker, at once.

        For findings between health rounds: a container died, a server crashed
        or came back. The deployment's health and state follow it as they would
        a health check's (a ``failing`` report turns the deployment's service
        health ``failing`` with an event naming ``report.message``). Call it from
        the event loop (like the rest of asyncio, it is not thread-safe); a report
        of a deployment the agent does not know is ignored (logged at debug level).
        """
        if self.reports is None:
            self.logger.debug("report of %s before the agent can take it", report.deployment_id)
            return
        self.reports(report)

    async def start_task(self, name: str, body: TaskBody) -> None:
        """Run ``body()`` for as long as the plugin is loaded, under a supervisor.

        When ``body`` raises (or returns) it is started again after a backoff and
        an ``at_risk`` event ``plugin.task_failed`` says why; failing too often in
        a row is a crash loop: a ``failing`` event ``plugin.task_crash_loop``, and
        the task stays down (the agent goes on). Every task is cancelled at unload.
        """
        if self._supervisor is None:
            self._supervisor = Supervisor(self.task_policy, self._task_failed)
        await self._supervisor.start_eternal(name, body)

    def typed_settings(self, model: type[SettingsModel]) -> SettingsModel:
        """``settings`` validated by the plugin's pydantic ``model``.

        A wrong value raises ``ConfigError`` naming ``plugin_settings.<field>``, worded
        by the same explainer as the agent's own settings.
        """
        return validate(model, self.settings, source="plugin settings", prefix="plugin_settings")

    def crashed_tasks(self) -> dict[str, str]:
        """Background tasks that crash-looped and stay down: name to last error."""
        return dict(self._crashed)

    async def stop_tasks(self) -> None:
        """Cancel and await every background task (at unload)."""
        if self._supervisor is not None:
            await self._supervisor.stop_all()

    def _task_failed(self, failure: TaskFailure) -> None:
        err = f"{type(failure.error).__name__}: {failure.error}"
        data = {
            "task": failure.task,
            "error": str(failure.error),
            "error_type": type(failure.error).__name__,
            "failures_in_window": failure.failures_in_window,
            "restart_in_s": failure.restart_in_s,
        }
        if failure.restart_in_s is not None:
            self._event(
                "plugin.task_failed",
                Status.AT_RISK,
                f"plugin task {failure.task!r} failed ({err}); "
                f"restarting in {failure.restart_in_s:.1f}s",
                data,
            )
            return
        self._crashed[failure.task] = err
        self._event(
            "plugin.task_crash_loop",
            Status.FAILING,
            f"plugin task {failure.task!r} failed {failure.failures_in_window} time(s) in a row "
            f"and is not restarted: {err}",
            data,
        )

    def _event(self, type_: str, status: Status, message: str, data: dict[str, Any]) -> None:
        self.emit(
            Event(
                type=type_,
                status=status,
                message=message,
                prediction_environment_id=self.prediction_environment_id,
                data=data,
            )
        )


class Plugin(abc.ABC):
    """Base class of every plugin; subclasses implement the abstract actions.

    All methods are coroutines and must never block the event loop: use an
    async client, or ``asyncio.to_thread`` for a blocking library.
    """

    name: str = ""
    """The name users configure (``plugin: docker``)."""
    settings_model: ClassVar[type[BaseModel] | None] = None
    """The pydantic model of ``plugin_settings`` (None: the plugin takes none); ``start``
    gets the validated instance from ``ctx.typed_settings(settings_model)``."""

    async def start(self, ctx: PluginContext) -> None:
        """Set the plugin up; raise ``PluginNotReadyError`` to be retried later."""
        self.ctx = ctx

    async def stop(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release what :meth:`start` acquired. Deployments keep running."""

    @abc.abstractmethod
    async def launch(self, spec: DesiredDeployment) -> ActionResult:
        """Start serving ``spec``; idempotent if it already runs as asked."""

    @abc.abstractmethod
    async def replace_model(self, spec: DesiredDeployment) -> ActionResult:
        """Swap the running deployment to ``spec``'s model packages without downtime."""

    @abc.abstractmethod
    async def stop_deployment(self, deployment_id: str) -> ActionResult:
        """Stop and clean up a deployment; idempotent if nothing runs."""

    async def relaunch(self, spec: DesiredDeployment) -> ActionResult:
        """Restart ``spec`` from scratch; by default a stop followed by a launch."""
        await self.stop_deployment(spec.id)
        return await self.launch(spec)

    @abc.abstractmethod
    async def deployment_status(self, deployment_id: str) -> DeploymentReport:
        """Report one deployment (``stopped`` when nothing runs for it)."""

    @abc.abstractmethod
    async def list_deployments(self) -> list[DeploymentReport]:
        """Report every deployment this plugin runs in the PE (for reconcile)."""

    @abc.abstractmethod
    async def environment_status(self) -> EnvironmentReport:
        """Report the health of the prediction environment as a whole."""

    async def statistics(
        self,
        deployment_id: str,
        *,
        server: str | None = None,
        associations_after: int | None = 0,
    ) -> Mapping[str, Any] | None:
        """The prediction server's cumulative statistics of one deployment, as it answers them.

        ``None`` when nothing serves the deployment or the plugin runs no prediction
        server (the default). The agent makes statistics windows by subtracting
        consecutive readings (``server`` and ``associations_after`` come from the
        previous one; ``associations_after=None`` asks for counts only). Plugins
        built on the fleet kit get this for free.
        """
        return None


PluginFactory = Callable[[], Plugin]


class PluginRegistry:
    """Names to plugin factories; by default filled from entry points."""

    def __init__(self, factories: Mapping[str, PluginFactory] | None = None) -> None:
        self._factories: dict[str, PluginFactory] = dict(factories or {})

    @classmethod
    def from_entry_points(cls, group: str = ENTRY_POINT_GROUP) -> PluginRegistry:
        """Collect every plugin installed under ``group``; loaded only when asked for."""
        registry = cls()
        for ep in metadata.entry_points(group=group):
            registry.register(ep.name, _lazy(ep))
        return registry

    def register(self, name: str, factory: PluginFactory) -> None:
        """Add (or replace) a plugin under ``name``."""
        self._factories[name] = factory

    def names(self) -> Iterable[str]:
        """List the registered names."""
        return sorted(self._factories)

    def create(self, name: str) -> Plugin:
        """Instantiate the plugin registered as ``name``."""
        try:
            factory = self._factories[name]
        except KeyError:
            raise PluginNotFoundError(name, list(self._factories)) from None
        return factory()


def _lazy(ep: metadata.EntryPoint) -> PluginFactory:
    def factory() -> Plugin:
        plugin_cls = ep.load()
        plugin = plugin_cls()
        if not isinstance(plugin, Plugin):
            raise TypeError(f"entry point {ep.name!r} ({ep.value}) is not a Plugin")
        return plugin

    return factory
