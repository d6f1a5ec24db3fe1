"""Plugin background tasks run supervised: restarted with backoff, a crash loop never silent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from helpers import eventually, running

from pilothouse.agent.plugin import PluginContext
from pilothouse.agent.runtime import Agent
from pilothouse.plugins.simulated import SimulatedPlugin

from .support import TIMEOUT, deployment, events, settled, wait_event, write_state

pytestmark = pytest.mark.anyio


class Watcher:
    """A plugin's background task that fails its first ``failures`` runs (or every run)."""

    def __init__(self, failures: int | None) -> None:
        self.failures = failures
        self.runs = 0
        self.cancelled = 0
        self.up = asyncio.Event()

    async def __call__(self) -> None:
        self.runs += 1
        if self.failures is None or self.runs <= self.failures:
            raise ConnectionError(f"event stream dropped (run {self.runs})")
        self.up.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


class TaskPlugin(SimulatedPlugin):
    """The simulated plugin, plus one background task started at setup."""

    def __init__(self, start: Callable[[PluginContext], Awaitable[None]]) -> None:
        super().__init__()
        self._start_tasks = start

    async def start(self, ctx: PluginContext) -> None:
        await super().start(ctx)
        await self._start_tasks(ctx)


def agent_with(make_settings, tmp_path, plugin: SimulatedPlugin, **extra) -> Agent:
    path = tmp_path / "desired.yaml"
    write_state(path, [deployment("d1", "m1")])
    return Agent(make_settings(intake={"desired_state_file": path}, **extra), plugin=plugin)


async def test_a_failing_task_is_restarted_and_each_failure_is_an_event(make_settings, tmp_path):
    watcher = Watcher(failures=2)
    plugin = TaskPlugin(lambda ctx: ctx.start_task("watch servers", watcher))
    agent = agent_with(make_settings, tmp_path, plugin)
    async with running(agent):
        await asyncio.wait_for(watcher.up.wait(), TIMEOUT)
        failed = await wait_event(agent, "plugin.task_failed", count=2)
        await settled(agent)
    assert watcher.runs == 3
    assert failed["status"] == "at_risk"
    assert failed["deployment_id"] is None
    assert "watch servers" in failed["message"] and "event stream dropped" in failed["message"]
    assert failed["data"]["task"] == "watch servers"
    assert failed["data"]["restart_in_s"] > 0
    assert events(agent, "plugin.task_crash_loop") == []
    assert watcher.cancelled == 1, "the task is cancelled when the plugin unloads"


async def test_a_crash_loop_is_a_failing_environment_event_and_the_agent_goes_on(
    make_settings, tmp_path
):
    watcher = Watcher(failures=None)
    plugin = TaskPlugin(lambda ctx: ctx.start_task("watch servers", watcher))
    agent = agent_with(
        make_settings,
        tmp_path,
        plugin,
        supervisor={"crash_loop_failures": 3},
        health={"interval_s": 0.05},
    )
    async with running(agent):
        loop = await wait_event(agent, "plugin.task_crash_loop")
        env = await wait_event(agent, "environment.health_changed")
        await eventually(lambda: agent.health.environment_status.value == "failing", TIMEOUT)
        # The agent still does its work.
        write_state(tmp_path / "desired.yaml", [deployment("d1", "m1"), deployment("d2", "m2")])
        await wait_event(agent, "deployment.ready", "d2")
        await settled(agent)
        runs = watcher.runs
    assert runs == 3, "not restarted after the crash loop"
    assert loop["status"] == "failing"
    assert loop["deployment_id"] is None
    assert "watch servers" in loop["message"] and "not restarted" in loop["message"]
    failing = [e for e in events(agent, "environment.health_changed") if e["status"] == "failing"]
    assert failing and "watch servers" in failing[0]["message"], env
    assert len(events(agent, "plugin.task_failed")) == 2
    assert events(agent, "agent.crash_loop") == [], "a plugin task never ends the agent"


async def test_tasks_are_cancelled_at_unload(make_settings, tmp_path):
    watchers = [Watcher(failures=0), Watcher(failures=0)]

    async def start(ctx: PluginContext) -> None:
        await ctx.start_task("first", watchers[0])
        await ctx.start_task("second", watchers[1])

    agent = agent_with(make_settings, tmp_path, TaskPlugin(start))
    async with running(agent):
        for watcher in watchers:
            await asyncio.wait_for(watcher.up.wait(), TIMEOUT)
    assert [w.cancelled for w in watchers] == [1, 1]
    assert events(agent, "plugin.task_failed") == []
