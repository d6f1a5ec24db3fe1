"""Reconcile on start: what the plugin already runs against what is desired."""

from __future__ import annotations

import pytest
from helpers import running

from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.vocabulary import DeploymentState

from .support import (
    calls,
    deployment,
    events,
    prefilled,
    settled,
    sim,
    types,
    wait_event,
    write_state,
)

pytestmark = pytest.mark.anyio


async def test_reconcile_launches_replaces_and_stops(make_settings, tmp_path):
    plugin = await prefilled(tmp_path, {"keep": "m1", "wrong": "m-old", "halt": "m1"})
    path = tmp_path / "desired.yaml"
    write_state(
        path,
        [
            deployment("keep", "m1"),
            deployment("wrong", "m-new"),
            deployment("halt", "m1", state="stopped"),
            deployment("missing", "m2"),
        ],
    )
    agent = Agent(make_settings(intake={"desired_state_file": path}), plugin=plugin)
    async with running(agent):
        await settled(agent)
        assert plugin.running() == {"keep": "m1", "wrong": "m-new", "missing": "m2"}
        await wait_event(agent, "deployment.ready", "missing")

    assert calls(plugin, "keep") == []
    assert calls(plugin, "wrong") == [("replace_model", "wrong", "m-new")]
    assert [c[0] for c in calls(plugin, "halt")] == ["stop"]
    assert calls(plugin, "missing") == [("launch", "missing", "m2")]
    assert types(agent, "keep") == []
    assert types(agent, "wrong") == [
        "deployment.replacing_model",
        "action.replace_model.succeeded",
        "deployment.ready",
    ]
    assert types(agent, "halt") == [
        "deployment.shutting_down",
        "action.stop.succeeded",
        "deployment.stopped",
    ]

    (reconciled,) = events(agent, "agent.reconciled")
    assert reconciled["status"] == "informational"
    assert reconciled["data"]["running"] == 3
    assert reconciled["data"]["desired"] == 4
    assert reconciled["data"]["plan"] == {
        "unchanged": 1,
        "replace_model": 1,
        "stop": 1,
        "launch": 1,
    }
    log = [e["type"] for e in events(agent)]
    first_action = min(i for i, t in enumerate(log) if t.startswith(("deployment.", "action.")))
    assert log.index("agent.reconciled") < first_action


@pytest.mark.parametrize(
    ("policy", "event_type", "event_status", "plan_key"),
    [
        ("adopt", "agent.orphan_adopted", "informational", "adopted"),
        ("stop", "agent.orphan_stopping", "informational", "stop"),
        ("leave", "agent.orphan_left", "at_risk", "left"),
    ],
)
async def test_orphans_follow_the_policy(
    make_settings, tmp_path, policy, event_type, event_status, plan_key
):
    plugin = await prefilled(tmp_path, {"d1": "m1", "orphan": "m9"})
    path = tmp_path / "desired.yaml"
    write_state(path, [deployment("d1", "m1")])
    settings = make_settings(intake={"desired_state_file": path}, reconcile={"orphans": policy})
    agent = Agent(settings, plugin=plugin)
    async with running(agent):
        await settled(agent)
        orphan_event = await wait_event(agent, event_type, "orphan")
        assert orphan_event["status"] == event_status
        assert orphan_event["data"]["model_package_id"] == "m9"
        assert f"reconcile.orphans={policy}" in orphan_event["message"]

        if policy == "stop":
            await wait_event(agent, "deployment.stopped", "orphan")
            assert plugin.running() == {"d1": "m1"}
            assert [c[0] for c in calls(plugin)] == ["stop"]
            assert "orphan" not in agent.dispatcher.records
        else:
            assert plugin.running() == {"d1": "m1", "orphan": "m9"}
            assert calls(plugin) == []
            tracked = agent.dispatcher.records.get("orphan")
            if policy == "adopt":
                assert tracked is not None
                assert tracked.state is DeploymentState.READY
                assert tracked.model_package_id == "m9"
            else:
                assert tracked is None

        # A later document that still does not name the orphan leaves it as the policy says.
        write_state(path, [deployment("d1", "m1"), deployment("d2", "m2")])
        await wait_event(agent, "deployment.ready", "d2")
        await settled(agent)
        expected = {"d1": "m1", "d2": "m2"} | ({} if policy == "stop" else {"orphan": "m9"})
        assert plugin.running() == expected

    (reconciled,) = events(agent, "agent.reconciled")
    assert reconciled["data"]["plan"] == {plan_key: 1, "unchanged": 1}
    assert reconciled["data"]["running"] == 2
    assert len(events(agent, event_type)) == 1
    other = {"agent.orphan_adopted", "agent.orphan_stopping", "agent.orphan_left"} - {event_type}
    assert not [e for e in events(agent) if e["type"] in other]


async def test_second_agent_run_reconciles_what_the_first_left_running(make_settings, tmp_path):
    state_file = tmp_path / "infrastructure.json"
    path = tmp_path / "desired.yaml"
    settings = make_settings(intake={"desired_state_file": path})

    write_state(path, [deployment("a", "m1"), deployment("b", "m2"), deployment("c", "m3")])
    first = Agent(settings, plugin=sim(state_file=state_file, persist_interval_s=0.05))
    async with running(first):
        await settled(first)
        assert first.plugin.running() == {"a": "m1", "b": "m2", "c": "m3"}
    assert state_file.exists()

    # While no agent runs: a gets a new model, b is gone, c should stop, d is new.
    write_state(
        path,
        [deployment("a", "m1b"), deployment("c", "m3", state="stopped"), deployment("d", "m4")],
    )
    second_plugin = sim(state_file=state_file, persist_interval_s=0.05)
    second = Agent(settings, plugin=second_plugin)
    async with running(second):
        await settled(second)
        assert second_plugin.running() == {"a": "m1b", "d": "m4"}
        await wait_event(second, "agent.reconciled", count=2)

    assert sorted(calls(second_plugin)) == [
        ("launch", "d", "m4"),
        ("replace_model", "a", "m1b"),
        ("stop", "b", "m2"),
        ("stop", "c", "m3"),
    ]
    reconciled = events(second, "agent.reconciled")[1]
    assert reconciled["data"]["running"] == 3
    assert reconciled["data"]["plan"] == {"replace_model": 1, "stop": 2, "launch": 1}
    assert len(events(second, "agent.orphan_stopping", "b")) == 1
