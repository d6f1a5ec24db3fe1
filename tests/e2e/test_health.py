"""The health reporter and the heartbeat, over short intervals."""

from __future__ import annotations

import orjson
import pytest
from helpers import eventually, running

from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status

from .support import TIMEOUT, deployment, events, settled, sim, types, wait_event, write_state

pytestmark = pytest.mark.anyio


def watched_agent(make_settings, tmp_path, deployments) -> Agent:
    path = tmp_path / "desired.yaml"
    write_state(path, deployments)
    settings = make_settings(
        intake={"desired_state_file": path},
        health={"interval_s": 0.05, "heartbeat_interval_s": 0.05},
    )
    return Agent(settings, plugin=sim())


async def rounds_pass(agent: Agent, n: int) -> None:
    """Wait until ``n`` more complete health rounds have run."""
    target = agent.health.rounds + n
    await eventually(lambda: agent.health.rounds >= target, TIMEOUT)


async def test_degraded_deployment_reports_one_health_change(make_settings, tmp_path):
    agent = watched_agent(make_settings, tmp_path, [deployment("d1", "m1"), deployment("d2", "m2")])
    async with running(agent):
        await settled(agent)
        await rounds_pass(agent, 2)
        assert events(agent, "deployment.health_changed") == []

        agent.plugin.degrade("d1", Status.AT_RISK)
        changed = await wait_event(agent, "deployment.health_changed", "d1")
        await rounds_pass(agent, 5)

        assert changed["status"] == "at_risk"
        assert changed["data"]["previous"] == "passing"
        assert changed["data"]["status"] == "at_risk"
        assert changed["message"].startswith("d1 is at_risk")
        assert len(events(agent, "deployment.health_changed")) == 1
        assert agent.dispatcher.records["d1"].status is Status.AT_RISK
        # Still running, so no action and no state change.
        assert agent.dispatcher.records["d1"].state is DeploymentState.READY
        assert [c.action for c in agent.plugin.calls] == ["launch", "launch"]

        agent.plugin.degrade("d1", Status.PASSING)
        recovered = await wait_event(agent, "deployment.health_changed", "d1", count=2)
        await rounds_pass(agent, 3)
        assert recovered["status"] == "passing"
        assert recovered["data"]["previous"] == "at_risk"
        assert len(events(agent, "deployment.health_changed")) == 2

    env = events(agent, "environment.health_changed")
    assert len(env) == 1
    assert env[0]["status"] == "passing"
    assert env[0]["data"] == {"previous": "unknown", "status": "passing"}


async def test_killed_deployment_errors_and_is_relaunched(make_settings, tmp_path):
    agent = watched_agent(make_settings, tmp_path, [deployment("d1", "m1"), deployment("d2", "m2")])
    async with running(agent):
        await settled(agent)
        agent.plugin.kill("d1")

        errored = await wait_event(agent, "deployment.errored", "d1")
        assert errored["status"] == "failing"
        assert errored["data"] == {"state": "errored", "found": "stopped"}
        assert "found stopped by a health check" in errored["message"]

        await wait_event(agent, "action.relaunch.succeeded", "d1")
        await eventually(lambda: agent.plugin.running().get("d1") == "m1", TIMEOUT)
        await settled(agent)
        assert agent.dispatcher.records["d1"].state is DeploymentState.READY
        await eventually(lambda: types(agent, "d1")[-1] == "deployment.ready", TIMEOUT)
        await rounds_pass(agent, 3)

    after_kill = types(agent, "d1")[3:]
    assert after_kill[after_kill.index("deployment.errored") :] == [
        "deployment.errored",
        "deployment.launching",
        "action.relaunch.succeeded",
        "deployment.ready",
    ]
    ready = events(agent, "deployment.ready", "d1")[-1]
    assert ready["status"] == "passing"
    assert ready["data"]["action"] == "relaunch"
    assert [c.action for c in agent.plugin.calls if c.deployment_id == "d1"] == [
        "launch",
        "stop",
        "launch",
    ]
    # d2 was not disturbed.
    assert types(agent, "d2") == [
        "deployment.launching",
        "action.launch.succeeded",
        "deployment.ready",
    ]
    assert len(events(agent, "deployment.errored")) == 1


async def test_heartbeat_file_is_written_and_refreshed(make_settings, tmp_path):
    agent = watched_agent(make_settings, tmp_path, [deployment("d1", "m1")])
    beat_path = agent.settings.state_dir / "heartbeat.json"
    async with running(agent):
        await settled(agent)

        def beat() -> dict:
            return orjson.loads(beat_path.read_bytes()) if beat_path.exists() else {}

        await eventually(lambda: beat().get("deployments", {}).get("ready") == 1, TIMEOUT)
        first = beat()
        assert first["prediction_environment_id"] == "pe-test"
        assert first["ready"] is True
        assert first["tasks"] and all(first["tasks"].values())
        assert {"dispatcher", "event writer", "health reporter", "heartbeat", "intake"} <= set(
            first["tasks"]
        )
        assert first["time"].endswith("Z")
        await eventually(lambda: beat()["time"] != first["time"], TIMEOUT)
    assert not list(agent.settings.state_dir.glob("*.tmp"))
