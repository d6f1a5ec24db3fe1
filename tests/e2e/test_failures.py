"""Failing plugins: retries, permanent failures, rollbacks, hangs and crashes."""

from __future__ import annotations

import pytest
from helpers import eventually, running

from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.vocabulary import DeploymentState

from .support import (
    TIMEOUT,
    assert_no_events_lost,
    calls,
    deployment,
    events,
    settled,
    sim,
    types,
    wait_event,
    write_state,
)

pytestmark = pytest.mark.anyio


def file_agent(make_settings, tmp_path, deployments, *, actions=None, shutdown=None, **plugin):
    path = tmp_path / "desired.yaml"
    write_state(path, deployments)
    overrides = {"intake": {"desired_state_file": path}}
    if actions:
        overrides["actions"] = actions
    if shutdown:
        overrides["shutdown"] = shutdown
    return Agent(make_settings(**overrides), plugin=sim(**plugin)), path


async def test_temporary_failures_are_retried_until_converged(make_settings, tmp_path):
    deps = [deployment(f"d{i}", f"m{i}") for i in range(5)]
    agent, _ = file_agent(
        make_settings,
        tmp_path,
        deps,
        actions={"max_attempts": 20},
        seed=7,
        temporary_failure_rate=0.7,
    )
    async with running(agent):
        await settled(agent)
        assert agent.plugin.running() == {f"d{i}": f"m{i}" for i in range(5)}
        for i in range(5):
            await wait_event(agent, "deployment.ready", f"d{i}")

    retrying = events(agent, "action.launch.retrying")
    assert retrying, "a 70% failure rate over five launches must retry at least once"
    for event in retrying:
        assert event["status"] == "at_risk"
        assert event["data"]["action"] == "launch"
        assert event["data"]["attempt"] >= 1
        assert "simulated temporary failure of launch" in event["data"]["error"]
        assert event["data"]["delay_s"] >= 0
    for i in range(5):
        assert types(agent, f"d{i}")[-1] == "deployment.ready"


async def test_permanent_failure_errors_retries_and_recovers_when_fixed(make_settings, tmp_path):
    agent, path = file_agent(
        make_settings,
        tmp_path,
        [deployment("d1", "bad"), deployment("ok", "m1")],
        fail_models=frozenset({"bad"}),
    )
    async with running(agent):
        failed = await wait_event(agent, "action.launch.failed", "d1")
        assert failed["status"] == "failing"
        assert failed["data"]["error_type"] == "PermanentPluginError"
        assert "model package bad fails to load" in failed["data"]["error"]
        assert failed["data"]["old_model_in_use"] is False
        errored = await wait_event(agent, "deployment.errored", "d1")
        assert errored["status"] == "failing"
        assert errored["data"]["model_package_id"] == "bad"

        # Tried again later, without any change of the desired state.
        await eventually(
            lambda: len([c for c in calls(agent.plugin, "d1") if c[0] == "launch"]) >= 3, TIMEOUT
        )
        assert agent.dispatcher.records["d1"].state in (
            DeploymentState.ERRORED,
            DeploymentState.LAUNCHING,
        )
        assert agent.plugin.running() == {"ok": "m1"}

        write_state(path, [deployment("d1", "good"), deployment("ok", "m1")])
        await eventually(lambda: agent.plugin.running().get("d1") == "good", TIMEOUT)
        await settled(agent)
        assert agent.dispatcher.records["d1"].state is DeploymentState.READY
        await eventually(lambda: types(agent, "d1")[-1] == "deployment.ready", TIMEOUT)

    assert types(agent, "ok") == [
        "deployment.launching",
        "action.launch.succeeded",
        "deployment.ready",
    ]
    ready = events(agent, "deployment.ready", "d1")[-1]
    assert ready["data"]["model_package_id"] == "good"
    assert ready["status"] == "passing"


def rolled_back(make_settings, tmp_path):
    agent, path = file_agent(
        make_settings, tmp_path, [deployment("d1", "m1")], rollback_models=frozenset({"m-bad"})
    )
    return agent, path


async def test_rolled_back_replacement_keeps_the_old_model_ready(make_settings, tmp_path):
    agent, path = rolled_back(make_settings, tmp_path)
    async with running(agent):
        await settled(agent)
        write_state(path, [deployment("d1", "m-bad")])
        failed = await wait_event(agent, "action.replace_model.failed", "d1")
        assert failed["status"] == "failing"
        assert failed["data"]["old_model_in_use"] is True
        assert failed["data"]["model_package_id"] == "m-bad"
        assert "m1 is still serving" in failed["message"]
        await eventually(lambda: "deployment.ready" in types(agent, "d1")[-2:], TIMEOUT)

        assert agent.plugin.running() == {"d1": "m1"}
        rec = agent.dispatcher.records["d1"]
        assert rec.state is DeploymentState.READY
        assert rec.model_package_id == "m1"

    after = types(agent, "d1")[3:]
    assert after[:3] == [
        "deployment.replacing_model",
        "action.replace_model.failed",
        "deployment.ready",
    ]
    assert "deployment.errored" not in after
    assert events(agent, "deployment.ready", "d1")[1]["status"] == "passing"


async def test_ready_event_after_rollback_names_the_model_still_serving(make_settings, tmp_path):
    agent, path = rolled_back(make_settings, tmp_path)
    async with running(agent):
        await settled(agent)
        write_state(path, [deployment("d1", "m-bad")])
        await wait_event(agent, "action.replace_model.failed", "d1")
        await wait_event(agent, "deployment.ready", "d1", count=2)
    ready_after_rollback = events(agent, "deployment.ready", "d1")[1]
    assert ready_after_rollback["data"]["model_package_id"] == "m1"


async def test_hanging_plugin_times_out(make_settings, tmp_path):
    agent, _ = file_agent(
        make_settings,
        tmp_path,
        [deployment("d1", "m1")],
        actions={"timeout_s": 0.2, "max_attempts": 2},
        shutdown={"grace_period_s": 0.2},
        hang_rate=1.0,
    )
    async with running(agent):
        retry = await wait_event(agent, "action.launch.retrying", "d1")
        assert retry["status"] == "at_risk"
        assert "launch did not finish within 0.2s" in retry["data"]["error"]
        failed = await wait_event(agent, "action.launch.failed", "d1")
        assert failed["status"] == "failing"
        assert failed["data"]["error_type"] == "ActionTimeoutError"
        assert "did not finish within 0.2s" in failed["message"]
        await wait_event(agent, "deployment.errored", "d1")
        assert agent.plugin.running() == {}
        assert all(agent.supervisor.alive().values())
        # The errored deployment is tried again; stop the agent while that hangs.
        await wait_event(agent, "deployment.launching", "d1", count=2)

    # The hanging action is cancelled after the grace period, and that is reported.
    assert_no_events_lost(agent)
    cancelled = events(agent, "action.relaunch.cancelled", "d1")
    assert len(cancelled) == 1
    assert cancelled[0]["status"] == "at_risk"
    log = [e["type"] for e in events(agent)]
    assert log.index("agent.stopping") < log.index("action.relaunch.cancelled")
    assert log[-1] == "agent.stopped"
    assert "agent.task_failed" not in log


async def test_crashing_plugin_is_reported_and_the_agent_keeps_running(make_settings, tmp_path):
    agent, _ = file_agent(make_settings, tmp_path, [deployment("d1", "m1")], crash_rate=1.0)
    async with running(agent) as task:
        failed = await wait_event(agent, "action.launch.failed", "d1")
        assert failed["status"] == "failing"
        assert "RuntimeError" in failed["message"]
        assert "RuntimeError: simulated crash in launch" in failed["data"]["error"]
        await wait_event(agent, "deployment.errored", "d1")
        # It keeps trying (a relaunch, since the deployment errored), and keeps living.
        await wait_event(agent, "action.relaunch.failed", "d1", count=2)
        assert not task.done()
        assert all(agent.supervisor.alive().values())

    assert_no_events_lost(agent)
    assert not [
        e for e in events(agent) if e["type"] in ("agent.task_failed", "agent.worker_failed")
    ]
    assert events(agent)[-1]["type"] == "agent.stopped"


async def test_a_plugin_not_ready_at_start_is_retried_then_the_agent_works(make_settings, tmp_path):
    agent, _ = file_agent(make_settings, tmp_path, [deployment("d1", "m1")], not_ready_starts=2)
    async with running(agent):
        await settled(agent)
        assert agent.plugin.running() == {"d1": "m1"}
        assert agent.plugin.starts == 3
        await wait_event(agent, "deployment.ready", "d1")

    assert_no_events_lost(agent)
    seen = [e["type"] for e in events(agent)]
    not_ready = events(agent, "agent.plugin_not_ready")
    assert [(e["status"], e["data"]["attempt"]) for e in not_ready] == [
        ("at_risk", 1),
        ("at_risk", 2),
    ]
    assert "simulated infrastructure not ready (start 2)" in not_ready[1]["message"]
    assert seen.index("agent.starting") < seen.index("agent.plugin_not_ready")
    assert (
        max(i for i, t in enumerate(seen) if t == "agent.plugin_not_ready")
        < seen.index("agent.started")
        < seen.index("deployment.ready")
    )
    assert "agent.plugin_failed" not in seen
