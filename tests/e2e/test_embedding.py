"""Embedding: ``await Agent(settings).serve()`` inside someone else's asyncio program."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from helpers import eventually, read_events, running

from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.desired import DesiredDeployment, DesiredState
from pilothouse.foundation.domain.vocabulary import Status

from .support import (
    TIMEOUT,
    assert_no_events_lost,
    emitted,
    events,
    settled,
    types,
    wait_event,
)

pytestmark = pytest.mark.anyio


def desired(**deployments: str) -> DesiredState:
    return DesiredState(
        deployments=tuple(
            DesiredDeployment(id=k, model_package_id=v) for k, v in deployments.items()
        )
    )


async def started(agent: Agent) -> asyncio.Task[None]:
    task = asyncio.create_task(agent.serve())
    async with asyncio.timeout(TIMEOUT):
        await agent.wait_ready()
    return task


async def test_embedded_agent_applies_settles_and_stops(make_settings):
    # The plugin comes from the entry points, configured by plugin_settings.
    agent = Agent(make_settings(plugin_settings={"seed": 3}))
    task = await started(agent)

    agent.apply(desired(e1="m1", e2="m2"))
    await eventually(lambda: agent.plugin.running() == {"e1": "m1", "e2": "m2"}, TIMEOUT)
    await settled(agent)

    agent.apply(desired(e1="m1b"))
    await eventually(lambda: agent.plugin.running() == {"e1": "m1b"}, TIMEOUT)
    await eventually(lambda: "e2" not in agent.dispatcher.records, TIMEOUT)
    await settled(agent)
    await wait_event(agent, "deployment.ready", "e1", count=2)

    agent.request_stop()
    agent.request_stop()  # asking twice is harmless
    async with asyncio.timeout(TIMEOUT):
        assert await task is None

    assert_no_events_lost(agent)
    assert agent.plugin.name == "test"
    assert agent.plugin.settings.seed == 3
    assert types(agent, "e2")[-1] == "deployment.stopped"
    assert [e["type"] for e in events(agent)[-2:]] == ["agent.stopping", "agent.stopped"]


async def test_wait_settled_after_apply_waits_for_that_state(make_settings):
    agent = Agent(make_settings())
    async with running(agent):
        await wait_event(agent, "agent.started")
        agent.apply(desired(s1="m1"))
        await settled(agent)
        assert agent.plugin.running() == {"s1": "m1"}


async def test_cancelling_serve_shuts_down_and_leaves_no_task_behind(make_settings):
    before = asyncio.all_tasks()
    agent = Agent(make_settings(http={"enabled": True, "port": 0}))
    task = await started(agent)
    agent.apply(desired(c1="m1", c2="m2"))
    await eventually(lambda: agent.plugin.running() == {"c1": "m1", "c2": "m2"}, TIMEOUT)
    await settled(agent)
    await wait_event(agent, "deployment.ready", "c2")

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(TIMEOUT):
            await task
    assert task.cancelled()

    assert asyncio.all_tasks() == before
    assert_no_events_lost(agent)
    log = [e["type"] for e in events(agent)]
    assert log[-1] == "agent.stopped"
    assert "agent.task_failed" not in log
    # The deployments keep running: stopping the agent never stops what it manages.
    assert agent.plugin.running() == {"c1": "m1", "c2": "m2"}


async def test_cancelling_serve_during_a_hanging_action(make_settings):
    before = asyncio.all_tasks()
    settings = make_settings(plugin_settings={"hang_rate": 1.0}, shutdown={"grace_period_s": 0.1})
    agent = Agent(settings)
    task = await started(agent)
    agent.apply(desired(h1="m1"))
    await wait_event(agent, "deployment.launching", "h1")

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(TIMEOUT):
            await task

    assert asyncio.all_tasks() == before
    assert_no_events_lost(agent)
    cancelled = events(agent, "action.launch.cancelled", "h1")
    assert len(cancelled) == 1
    assert cancelled[0]["status"] == "at_risk"
    assert events(agent)[-1]["type"] == "agent.stopped"


async def test_a_cancelled_action_reports_the_state_it_leaves(make_settings):
    agent = Agent(make_settings(plugin_settings={"hang_rate": 1.0}, shutdown={"grace_period_s": 0}))
    async with running(agent):
        agent.apply(desired(h1="m1"))
        await wait_event(agent, "deployment.launching", "h1")
    assert_no_events_lost(agent)
    assert types(agent, "h1") == [
        "deployment.launching",
        "action.launch.cancelled",
        "deployment.unknown",
    ]


async def test_two_agents_in_one_loop_stay_apart(make_settings, tmp_path):
    first = Agent(make_settings(prediction_environment="pe-a", state_dir=tmp_path / "a"))
    second = Agent(make_settings(prediction_environment="pe-b", state_dir=tmp_path / "b"))
    async with running(first), running(second):
        first.apply(desired(x="m1"))
        second.apply(desired(x="m2", y="m3"))
        await eventually(lambda: first.plugin.running() == {"x": "m1"}, TIMEOUT)
        await eventually(lambda: second.plugin.running() == {"x": "m2", "y": "m3"}, TIMEOUT)
        await wait_event(first, "deployment.ready", "x")
        await wait_event(second, "deployment.ready", "y")
        labels = {"action": "launch", "result": "succeeded"}
        get = "pilothouse_agent_actions_total"
        assert first.metrics.registry.get_sample_value(get, labels) == 1
        assert second.metrics.registry.get_sample_value(get, labels) == 2
    assert {e["prediction_environment_id"] for e in events(first)} == {"pe-a"}
    assert {e["prediction_environment_id"] for e in events(second)} == {"pe-b"}


async def test_stopping_during_an_event_write_loses_and_repeats_nothing(make_settings, tmp_path):
    # A bulky event keeps the writer's thread busy while the agent shuts down behind it.
    # (Before 39b4944 this wrote batches twice; since, the events behind it are lost.)
    for attempt in range(5):
        agent = Agent(make_settings(state_dir=tmp_path / f"run{attempt}"))
        async with running(agent):
            await wait_event(agent, "agent.started")
            agent.bus.report("test.bulky", Status.INFORMATIONAL, "x" * 10_000_000)
        written = read_events(agent.settings.event_log_path)
        counts = Counter(e["id"] for e in written)
        assert [n for n in counts.values() if n > 1] == [], f"attempt {attempt}: repeated"
        assert [e["type"] for e in written[-3:]] == [
            "test.bulky",
            "agent.stopping",
            "agent.stopped",
        ], f"attempt {attempt}: lost"
        assert len(written) == emitted(agent)
