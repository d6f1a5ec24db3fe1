"""The plugin interface: the one async contract between the agent and infrastructure.

A plugin turns actions (launch, replace_model, stop, relaunch) into work on
some infrastructure and reports what runs there. Its lifecycle follows Home
Assistant's integrations: :meth:`Plugin.start` gets a :class:`PluginContext`
(identity, settings, a place for files, a way to emit events and to own
background tasks), :meth:`Plugin.stop` unloads it, and the agent cancels any
background task the plugin left behind.

Plugins report failures with :mod:`pilothouse.agent.errors`: a ``TemporaryPluginError``
is retried with backoff, a ``PermanentPluginError`` is not. Anything else a
plugin raises is treated as a bug in the plugin: reported, not retried.

Plugins are found through the ``pilothouse.plugins`` entry-point group; the
built-ins register the same way. Tests pass an explicit :class:`PluginRegistry`.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel

from pilothouse.agent.errors import PluginNotFoundError
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
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EnvironmentReport:
    """What the plugin sees of the whole prediction environment."""

    status: Status
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[Event], None]
PackageFetcher = Callable[[str], Awaitable["FetchedPackage"]]
SettingsModel = TypeVar("SettingsModel", bound=BaseModel)


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
    report: Callable[[DeploymentReport], None] | None = None
    """Push a finding about one deployment to its worker at once (a server died, a pod was
    OOM-killed) instead of waiting for the next health round; None where the agent has none."""
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def typed_settings(self, model: type[SettingsModel]) -> SettingsModel:
        """``settings`` validated by the plugin's pydantic ``model``.

        A wrong value raises ``ConfigError`` naming ``plugin_settings.<field>``, worded
        by the same explainer as the agent's own settings.
        """
        return validate(model, self.settings, source="plugin settings", prefix="plugin_settings")

    def create_background_task(self, name: str, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` for as long as the plugin is loaded; the agent cancels it at unload."""
        task = asyncio.create_task(coro, name=f"plugin: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.logger.error(
                "plugin background task %s failed", task.get_name(), exc_info=task.exception()
            )

    async def cancel_background_tasks(self) -> None:
        """Cancel and await every background task the plugin still owns."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


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
