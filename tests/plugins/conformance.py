"""The plugin conformance suite: what every plugin must do, whatever its infrastructure.

A plugin passes it by one small test module that subclasses :class:`Conformance`
(or :class:`ServingConformance`, for a plugin whose deployments answer
predictions over HTTP) and provides a ``harness`` fixture — an object that
satisfies :class:`Harness`: how to make the plugin, its settings, a few model
packages that behave in known ways, and how to see what it left on its
infrastructure::

    class TestDockerShared(ServingConformance):
        @pytest.fixture
        def harness(self, tmp_path: Path) -> Harness:
            return DockerHarness(tmp_path, mode="shared")

The suite drives the plugin directly through the plugin interface with a
context built here (events and ``ctx.report`` findings are recorded), and
simulates an agent restart by unloading the plugin and starting a fresh
instance on the same state directory. Every test ends with the plugin
unloaded and ``Harness.cleanup`` run, whatever happened.

What it checks: launch is idempotent; stop is idempotent and leaves nothing
behind; the status of an unknown deployment is ``stopped``; after an agent
restart, ``list_deployments`` returns what runs (adopted, not duplicated) and
each adopted deployment passes its probe; a replacement serves the new model
(and, where a server answers, never drops a request); failures are typed —
temporary or permanent — and a wrong setting is refused naming the field.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import pytest

from pilothouse.agent.errors import (
    ConfigError,
    PermanentPluginError,
    PluginError,
    TemporaryPluginError,
)
from pilothouse.agent.plugin import DeploymentReport, PackageFetcher, Plugin, PluginContext
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.events import Event
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status

PE = "pe-conformance"


class Harness(Protocol):
    """What the suite needs to know of one plugin under test."""

    model_a: str
    """A model package that launches and passes its probe."""
    model_b: str
    """Another one (a replacement for ``model_a``)."""
    broken_model: str
    """A model package whose launch fails permanently (it cannot load)."""
    unavailable_model: str
    """A model package whose launch fails temporarily (its source does not answer)."""
    bad_setting: tuple[dict[str, Any], str]
    """Settings with one wrong value, and the dotted name of that field."""
    fetch_package: PackageFetcher | None
    """What the context offers as ``ctx.fetch_package`` (None: standalone)."""
    timeout_s: float
    """Budget of one action on this infrastructure."""

    def make_plugin(self) -> Plugin:
        """A new, unstarted plugin instance."""
        ...

    def settings(self) -> dict[str, Any]:
        """``plugin_settings``: deployments must outlive an unload (for adoption)."""
        ...

    async def footprint(self, plugin: Plugin) -> list[str]:
        """Everything the plugin runs on its infrastructure right now (pids, containers, …)."""
        ...

    async def leftovers(self, plugin: Plugin, deployment_id: str) -> list[str]:
        """What still exists on the infrastructure for one deployment (empty: nothing)."""
        ...

    async def cleanup(self, plugins: list[Plugin]) -> None:
        """Remove everything the test created, even after a failure (``plugins``: every
        instance the test made, unloaded)."""
        ...


class ServingHarness(Harness, Protocol):
    """A harness whose deployments answer ``POST {"rows": rows}`` at their prediction URL."""

    rows: list[dict[str, Any]]
    """Rows every model package of the harness accepts."""


@dataclass
class World:
    """One plugin under test, its context, and what it emitted and reported."""

    harness: Harness
    state_dir: Path
    events: list[Event] = field(default_factory=list)
    reports: list[DeploymentReport] = field(default_factory=list)
    plugin: Plugin | None = None
    ctx: PluginContext | None = None
    instances: list[Plugin] = field(default_factory=list)
    """Every plugin instance started, for the harness's cleanup."""

    @property
    def p(self) -> Plugin:
        """The started plugin."""
        assert self.plugin is not None, "the plugin is not started"
        return self.plugin

    async def start(self) -> None:
        """Start a fresh plugin instance on the world's state directory (an agent start)."""
        self.ctx = context(self.harness, self.state_dir, self.harness.settings(), self)
        plugin = self.harness.make_plugin()
        self.instances.append(plugin)
        await plugin.start(self.ctx)
        self.plugin = plugin

    async def unload(self) -> None:
        """Unload the plugin as the agent does at shutdown; its deployments keep running."""
        if self.plugin is not None:
            plugin, self.plugin = self.plugin, None
            await plugin.stop()
        if self.ctx is not None:
            await self.ctx.stop_tasks()

    async def restart(self) -> None:
        """An agent restart: unload, then a new instance on the same state."""
        await self.unload()
        await self.start()

    async def act(self, coro: Any) -> Any:
        """Await one action within the harness's budget."""
        async with asyncio.timeout(self.harness.timeout_s):
            return await coro


def context(
    harness: Harness, state_dir: Path, settings: dict[str, Any], world: World | None = None
) -> PluginContext:
    """The context an agent would hand the plugin, recording events and findings."""
    events: list[Event] = world.events if world else []
    reports: list[DeploymentReport] = world.reports if world else []
    return PluginContext(
        prediction_environment_id=PE,
        settings=settings,
        state_dir=state_dir,
        emit=events.append,
        logger=logging.getLogger("pilothouse.plugin.conformance"),
        fetch_package=harness.fetch_package,
        reports=reports.append,
    )


def spec(deployment_id: str, model_package_id: str, generation: int = 1) -> DesiredDeployment:
    """A desired deployment."""
    return DesiredDeployment(id=deployment_id, model_package_id=model_package_id,
                             generation=generation)  # fmt: skip


def assert_serving(report: Any, model_package_id: str) -> None:
    """``report`` (an ActionResult or a DeploymentReport) says ready, passing, on that model."""
    seen = (report.state, report.status, report.model_package_id)
    assert seen == (DeploymentState.READY, Status.PASSING, model_package_id), report


class Conformance:
    """The contract every plugin keeps."""

    @pytest.fixture
    async def world(self, harness: Harness, tmp_path: Path) -> AsyncIterator[World]:
        """A started plugin; unloaded and cleaned up after the test, whatever happened."""
        w = World(harness, tmp_path / "conformance-state")
        try:
            await w.start()
            yield w
        finally:
            try:
                await w.unload()
            finally:
                await harness.cleanup(w.instances)

    async def test_launch_is_idempotent(self, world: World) -> None:
        h = world.harness
        first = await world.act(world.p.launch(spec("c1", h.model_a)))
        again = await world.act(world.p.launch(spec("c1", h.model_a)))
        assert_serving(first, h.model_a)
        assert_serving(again, h.model_a)
        assert again.prediction_url == first.prediction_url
        footprint = await h.footprint(world.p)
        await world.act(world.p.launch(spec("c1", h.model_a)))
        assert await h.footprint(world.p) == footprint, "a repeated launch starts nothing new"
        listed = [r for r in await world.p.list_deployments() if r.deployment_id == "c1"]
        assert [r.model_package_id for r in listed] == [h.model_a]
        assert_serving(await world.p.deployment_status("c1"), h.model_a)

    async def test_stop_is_idempotent_and_leaves_nothing_behind(self, world: World) -> None:
        h = world.harness
        for dep_id in ("c1", "c2"):
            await world.act(world.p.launch(spec(dep_id, h.model_a)))
        first = await world.act(world.p.stop_deployment("c1"))
        again = await world.act(world.p.stop_deployment("c1"))
        assert first.state is DeploymentState.STOPPED and again.state is DeploymentState.STOPPED
        assert (await world.p.deployment_status("c1")).state is DeploymentState.STOPPED
        assert [r.deployment_id for r in await world.p.list_deployments()] == ["c2"]
        assert await h.leftovers(world.p, "c1") == []
        assert_serving(await world.p.deployment_status("c2"), h.model_a)

    async def test_status_of_an_unknown_deployment_is_stopped(self, world: World) -> None:
        h = world.harness
        assert (await world.p.deployment_status("nobody")).state is DeploymentState.STOPPED
        assert (await world.act(world.p.stop_deployment("nobody"))).state is DeploymentState.STOPPED
        await world.act(world.p.launch(spec("c1", h.model_a)))
        unknown = await world.p.deployment_status("nobody")
        assert (unknown.deployment_id, unknown.state) == ("nobody", DeploymentState.STOPPED)

    async def test_list_after_an_agent_restart_returns_what_runs(self, world: World) -> None:
        h = world.harness
        await world.act(world.p.launch(spec("c1", h.model_a)))
        await world.act(world.p.launch(spec("c2", h.model_b)))
        footprint = await h.footprint(world.p)
        await world.restart()
        listed = {r.deployment_id: r.model_package_id for r in await world.p.list_deployments()}
        assert listed == {"c1": h.model_a, "c2": h.model_b}
        assert await h.footprint(world.p) == footprint, "adopted, not started again"
        # Probed exactly like launched ones: an adopted deployment is not a false alarm.
        assert_serving(await world.p.deployment_status("c1"), h.model_a)
        assert_serving(await world.p.deployment_status("c2"), h.model_b)

    async def test_replacement_serves_the_new_model(self, world: World) -> None:
        h = world.harness
        await world.act(world.p.launch(spec("c1", h.model_a)))
        replaced = await world.act(world.p.replace_model(spec("c1", h.model_b, generation=2)))
        assert_serving(replaced, h.model_b)
        assert not replaced.old_model_in_use
        assert_serving(await world.p.deployment_status("c1"), h.model_b)

    async def test_errors_are_typed(self, world: World) -> None:
        h = world.harness
        with pytest.raises(PluginError) as broken:
            await world.act(world.p.launch(spec("c1", h.broken_model)))
        assert isinstance(broken.value, PermanentPluginError), broken.value
        assert str(broken.value), "a permanent error says why"
        assert (await world.p.deployment_status("c1")).status is not Status.PASSING
        with pytest.raises(PluginError) as unavailable:
            await world.act(world.p.launch(spec("c2", h.unavailable_model)))
        assert isinstance(unavailable.value, TemporaryPluginError), unavailable.value
        assert h.unavailable_model in str(unavailable.value)

    async def test_a_wrong_setting_is_refused_naming_the_field(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        settings, name = harness.bad_setting
        plugin = harness.make_plugin()
        assert type(plugin).settings_model is not None, "settings are typed"
        ctx = context(harness, tmp_path / "bad-settings", settings)
        try:
            with pytest.raises(ConfigError) as info:
                await plugin.start(ctx)
        finally:
            await ctx.stop_tasks()
            await harness.cleanup([plugin])
        assert info.value.source == "plugin settings"
        assert [p for p in info.value.problems if p.startswith(f"plugin_settings.{name}: got ")]


class ServingConformance(Conformance):
    """The contract of a plugin whose deployments answer predictions over HTTP."""

    async def test_replacement_never_drops_a_request(self, world: World) -> None:
        h = world.harness
        assert isinstance(getattr(h, "rows", None), list), "a ServingHarness has rows"
        launched = await world.act(world.p.launch(spec("c1", h.model_a)))
        url = launched.prediction_url
        assert url, "a serving plugin reports a prediction URL"
        rows: list[dict[str, Any]] = h.rows  # type: ignore[attr-defined]
        async with _traffic(url, rows) as seen:
            await _until(lambda: len(seen) >= 20, "requests flow")
            replaced = await world.act(world.p.replace_model(spec("c1", h.model_b, 2)))
            mark = len(seen)
            await _until(lambda: len(seen) >= mark + 20, "requests flow after the swap")
        assert_serving(replaced, h.model_b)
        dropped = [s for s in seen if s[0] != 200]
        assert not dropped, f"{len(dropped)} of {len(seen)} requests failed: {dropped[:3]}"
        answered = list(dict.fromkeys(model for _, model in seen))
        assert answered == [h.model_a, h.model_b], "answers switch once, never back"


@contextlib.asynccontextmanager
async def _traffic(url: str, rows: list[dict[str, Any]]) -> AsyncIterator[list[tuple[int, str]]]:
    """Two clients predicting in a loop for the block; (HTTP status, model package id) each."""
    seen: list[tuple[int, str]] = []
    stop = asyncio.Event()

    async def client(http: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            try:
                async with http.post(url, json={"rows": rows}) as resp:
                    doc = await resp.json(content_type=None)
                    seen.append((resp.status, str(doc.get("model_package_id"))))
            except (aiohttp.ClientError, TimeoutError) as exc:
                seen.append((0, f"{type(exc).__name__}: {exc}"))
                await asyncio.sleep(0.01)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        tasks = [asyncio.create_task(client(http)) for _ in range(2)]
        try:
            yield seen
        finally:
            stop.set()
            await asyncio.gather(*tasks)


async def _until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.02)
