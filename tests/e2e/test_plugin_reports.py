"""Findings outside health rounds: ``ctx.report`` reaches the deployment's worker at once.

A plugin that sees a runtime die (a crash watcher) reports it; the deployment's
health follows at once, with an event on the deployment naming the cause, and
comes back when a later report or a health check says so. A state has one
status wherever it was found.
"""

from __future__ import annotations

import logging

import pytest
from helpers import eventually, running

from pilothouse.agent.plugin import DeploymentReport
from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status

from .support import TIMEOUT, deployment, events, settled, sim, types, wait_event, write_state

pytestmark = pytest.mark.anyio

HOUR = 3600.0


def reporting_agent(make_settings, tmp_path, *, interval_s: float = HOUR, **plugin) -> Agent:
    """Two deployments; health rounds only when ``interval_s`` is short."""
    path = tmp_path / "desired.yaml"
    write_state(path, [deployment("d1", "m1"), deployment("d2", "m2")])
    settings = make_settings(intake={"desired_state_file": path}, health={"interval_s": interval_s})
    return Agent(settings, plugin=sim(**plugin))


async def test_a_crash_report_turns_the_deployment_failing_at_once_and_back(
    make_settings, tmp_path
):
    agent = reporting_agent(make_settings, tmp_path)
    async with running(agent):
        await settled(agent)
        agent.plugin.crash("d1", "prediction server exited with -9")
        failing = await wait_event(agent, "deployment.health_changed", "d1")
        assert failing["status"] == "failing"
        assert failing["deployment_id"] == "d1"
        assert "prediction server exited with -9" in failing["message"]
        assert failing["data"]["previous"] == "passing"
        assert agent.dispatcher.records["d1"].status is Status.FAILING
        assert agent.dispatcher.records["d1"].state is DeploymentState.READY

        agent.plugin.recover("d1", "prediction server restarted")
        passing = await wait_event(agent, "deployment.health_changed", "d1", count=2)
        assert passing["status"] == "passing"
        assert "prediction server restarted" in passing["message"]
        await settled(agent)
        assert agent.dispatcher.records["d1"].status is Status.PASSING

    # No health round ran; nothing happened to d2; the reports caused no action.
    assert agent.health.rounds == 0
    assert events(agent, "deployment.health_changed", "d2") == []
    assert [c.action for c in agent.plugin.calls] == ["launch", "launch"]


async def test_a_failing_report_is_cleared_by_the_next_health_check(make_settings, tmp_path):
    agent = reporting_agent(make_settings, tmp_path, interval_s=0.05)
    async with running(agent):
        await settled(agent)
        agent.plugin.crash("d2", "container d2 was OOM-killed")
        failing = await wait_event(agent, "deployment.health_changed", "d2")
        assert failing["status"] == "failing"
        assert "OOM-killed" in failing["message"]

        agent.plugin.degrade("d2", Status.PASSING)  # back, silently: only a probe can tell
        passing = await wait_event(agent, "deployment.health_changed", "d2", count=2)
        assert passing["status"] == "passing"
        assert passing["data"]["previous"] == "failing"


async def test_a_vanished_deployment_is_relaunched_without_waiting_for_a_health_round(
    make_settings, tmp_path
):
    agent = reporting_agent(make_settings, tmp_path)
    async with running(agent):
        await settled(agent)
        agent.plugin.kill("d1", report=True)
        errored = await wait_event(agent, "deployment.errored", "d1")
        assert errored["status"] == "failing"
        assert "the plugin" in errored["message"] and "it vanished" in errored["message"]
        await wait_event(agent, "action.relaunch.succeeded", "d1")
        await settled(agent)
        assert agent.plugin.running() == {"d1": "m1", "d2": "m2"}
    assert agent.health.rounds == 0


async def test_a_report_of_an_unknown_deployment_is_ignored(make_settings, tmp_path, caplog):
    agent = reporting_agent(make_settings, tmp_path)
    async with running(agent):
        await settled(agent)
        before = len(events(agent))
        with caplog.at_level(logging.DEBUG, logger="pilothouse.dispatcher"):
            agent.plugin.ctx.report(
                DeploymentReport("nobody", DeploymentState.ERRORED, Status.FAILING, "gone")
            )
        assert "nobody" in caplog.text
        await settled(agent)
        assert len(events(agent)) == before
        assert "nobody" not in agent.dispatcher.records


async def test_a_ready_found_by_a_health_check_has_the_status_of_any_ready(make_settings, tmp_path):
    """One status per state: a health check that finds an errored deployment running
    reports ``deployment.ready`` as ``passing``, like the worker does after a launch."""
    path = tmp_path / "desired.yaml"
    write_state(path, [deployment("d1", "broken-model")])
    settings = make_settings(
        intake={"desired_state_file": path},
        health={"interval_s": 0.05},
        actions={"errored_retry_s": HOUR, "backoff_max_s": HOUR},
    )
    agent = Agent(settings, plugin=sim(fail_models=["broken-model"]))
    async with running(agent):
        await wait_event(agent, "deployment.errored", "d1")
        # The model comes up after all (an operator fixed it by hand): a check finds it.
        agent.plugin.settings = agent.plugin.settings.model_copy(update={"fail_models": set()})
        await agent.plugin.launch(agent.dispatcher.records["d1"].desired)
        found = await wait_event(agent, "deployment.ready", "d1")
        assert "found ready by a health check" in found["message"]
        assert found["status"] == "passing"
        await eventually(lambda: agent.dispatcher.records["d1"].state is DeploymentState.READY)
        await settled(agent)
    launched = [e for e in events(agent, "deployment.ready") if e["data"].get("action")]
    assert launched and {e["status"] for e in launched} == {"passing"}
    assert types(agent, "d1")[:3] == [
        "deployment.launching",
        "action.launch.failed",
        "deployment.errored",
    ]


async def test_reports_during_an_action_wait_for_its_outcome(make_settings, tmp_path):
    """A report made while an action is in flight is not applied over the action's result."""
    path = tmp_path / "desired.yaml"
    write_state(path, [deployment("d1", "m1")])
    settings = make_settings(intake={"desired_state_file": path}, health={"interval_s": HOUR})
    agent = Agent(settings, plugin=sim(delays={"replace_model_s": 0.5}))
    async with running(agent):
        await settled(agent)
        write_state(path, [deployment("d1", "m2")])
        await eventually(lambda: agent.dispatcher.records["d1"].busy, TIMEOUT)
        agent.plugin.crash("d1", "crashed during the replacement")
        await wait_event(agent, "action.replace_model.succeeded", "d1")
        await settled(agent)
        assert agent.dispatcher.records["d1"].status is Status.PASSING
    assert events(agent, "deployment.health_changed", "d1") == []
