"""Per-deployment serialization: stale pending changes are superseded, not executed.

Changes to one deployment are applied one at a time and only the newest
pending generation is acted on; different deployments proceed in parallel,
bounded by ``actions.max_concurrent``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from helpers import eventually, read_events, running

from pilothouse.agent.plugin import ActionResult
from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.desired import DesiredDeployment, DesiredState
from pilothouse.plugins.simulated.plugin import Delays, SimulatedPlugin
from pilothouse.plugins.simulated.plugin import SimulatedPluginSettings as PluginSettings

pytestmark = pytest.mark.anyio

DELAY = 0.2
SUPERSEDED = "pilothouse_agent_changes_superseded_total"


class CountingPlugin(SimulatedPlugin):
    """The simulated plugin, measuring how many launches run at once."""

    def __init__(self, settings: PluginSettings) -> None:
        super().__init__(settings)
        self.in_flight = 0
        self.peak = 0
        self.finished: list[tuple[str, float]] = []

    async def launch(self, spec: DesiredDeployment) -> ActionResult:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super().launch(spec)
        finally:
            self.in_flight -= 1
            self.finished.append((spec.id, time.monotonic()))  # the clock of Call.at


def state(**models: str) -> DesiredState:
    return DesiredState(
        deployments=tuple(DesiredDeployment(id=k, model_package_id=v) for k, v in models.items())
    )


def slow_agent(make_settings: Any, **overrides: Any) -> tuple[Agent, CountingPlugin]:
    plugin = CountingPlugin(PluginSettings(delays=Delays(launch_s=DELAY, replace_model_s=0.01)))
    return Agent(make_settings(**overrides), plugin=plugin), plugin


async def settle(agent: Agent) -> None:
    async with asyncio.timeout(10):  # no await before wait_settled looks
        await agent.wait_settled()


def superseded(agent: Agent) -> float:
    return agent.metrics.registry.get_sample_value(SUPERSEDED) or 0.0


def calls(plugin: SimulatedPlugin) -> list[tuple[str, str, int, str | None]]:
    return [(c.action, c.deployment_id, c.generation, c.model_package_id) for c in plugin.calls]


async def test_only_first_and_newest_generation_reach_the_plugin(make_settings: Any) -> None:
    agent, plugin = slow_agent(make_settings)
    async with running(agent):
        agent.apply(state(d="m1"))
        await eventually(lambda: len(plugin.calls) == 1)  # generation 1 is launching
        for n in range(2, 6):
            agent.apply(state(d=f"m{n}"))
            await asyncio.sleep(0.01)  # each change is routed on its own
        assert len(plugin.calls) == 1, "a pending change ran while the first was in flight"
        await settle(agent)
        assert calls(plugin) == [("launch", "d", 1, "m1"), ("replace_model", "d", 5, "m5")]
        assert plugin.running() == {"d": "m5"}
        assert superseded(agent) == 3  # generations 2, 3 and 4
    acted = [
        e["data"]["generation"]
        for e in read_events(agent.settings.event_log_path)
        if e["type"].startswith("action.") and e["type"].endswith(".succeeded")
    ]
    assert acted == [1, 5]


async def test_removal_supersedes_pending_changes(make_settings: Any) -> None:
    # Found at b293ed3, fixed in a4d31b7: the removal was numbered rec.generation + 1 from
    # the busy worker's record, got the generation of a pending change and was dropped.
    agent, plugin = slow_agent(make_settings)
    async with running(agent):
        agent.apply(state(d="m1"))
        await eventually(lambda: len(plugin.calls) == 1)
        agent.apply(state(d="m2"))
        agent.apply(state(d="m3"))
        await asyncio.sleep(0.01)
        agent.apply(state())  # gone: the newest change wins over both pending ones
        await settle(agent)
        assert plugin.running() == {}
        assert [c[0] for c in calls(plugin)] == ["launch", "stop"]


async def test_reapplying_the_same_state_supersedes_nothing(make_settings: Any) -> None:
    # Found at b293ed3, fixed in a4d31b7: the duplicate was routed again (the worker had not
    # yet recorded generation 1) and counted as superseded.
    agent, plugin = slow_agent(make_settings)
    async with running(agent):
        agent.apply(state(d="m1"))
        agent.apply(state(d="m1"))  # unchanged: same generation, nothing to supersede
        await settle(agent)
        assert calls(plugin) == [("launch", "d", 1, "m1")]
        assert superseded(agent) == 0


async def test_different_deployments_proceed_in_parallel(make_settings: Any) -> None:
    agent, plugin = slow_agent(make_settings)
    async with running(agent):
        agent.apply(state(a="m1", b="m1"))
        await settle(agent)
    assert plugin.running() == {"a": "m1", "b": "m1"}
    assert plugin.peak == 2
    # Both launches reached the plugin before either of them finished.
    first_done = min(t for _, t in plugin.finished)
    assert all(c.at < first_done for c in plugin.calls)


async def test_concurrency_is_bounded_by_max_concurrent(make_settings: Any) -> None:
    agent, plugin = slow_agent(make_settings, actions={"max_concurrent": 2})
    ids = [f"d{i}" for i in range(6)]
    async with running(agent):
        agent.apply(state(**dict.fromkeys(ids, "m1")))
        await eventually(lambda: plugin.in_flight == 2)
        await asyncio.sleep(DELAY / 2)
        assert plugin.in_flight == 2
        await settle(agent)
    assert plugin.running() == dict.fromkeys(ids, "m1")
    assert plugin.peak == 2
    assert sorted(c.deployment_id for c in plugin.calls) == ids
