"""Standalone mode: a desired-state file drives launches, replacements and stops."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from helpers import eventually, running

from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.vocabulary import DeploymentState

from .support import (
    EVENT_FIELDS,
    TIMEOUT,
    calls,
    deployment,
    events,
    settled,
    sim,
    types,
    wait_event,
    write_raw,
    write_state,
)

pytestmark = pytest.mark.anyio


def file_agent(make_settings, path: Path, **plugin_settings) -> Agent:
    settings = make_settings(intake={"desired_state_file": path})
    return Agent(settings, plugin=sim(**plugin_settings))


async def test_file_launches_each_deployment_with_ordered_events(make_settings, tmp_path):
    path = tmp_path / "desired.yaml"
    write_state(path, [deployment("d1", "m1"), deployment("d2", "m2", name="second")])
    agent = file_agent(make_settings, path)
    async with running(agent):
        await settled(agent)
        assert agent.plugin.running() == {"d1": "m1", "d2": "m2"}
        await wait_event(agent, "deployment.ready", "d2")

    log = events(agent)
    for event in log:
        assert set(event) == EVENT_FIELDS
        assert event["prediction_environment_id"] == "pe-test"
        assert event["source"] == "agent"
        assert event["time"].endswith("Z")
        datetime.fromisoformat(event["time"].removesuffix("Z") + "+00:00")
    ids = [e["id"] for e in log]
    assert ids == sorted(ids), "event ids are time-ordered"
    assert len(set(ids)) == len(ids), "event ids are unique"

    loaded = events(agent, "desired_state.loaded")
    assert loaded[0]["status"] == "informational"
    assert loaded[0]["data"]["deployments"] == 2

    for dep, model in (("d1", "m1"), ("d2", "m2")):
        assert types(agent, dep) == [
            "deployment.launching",
            "action.launch.succeeded",
            "deployment.ready",
        ]
        launching, succeeded, ready = events(agent, dep=dep)
        assert launching["status"] == "informational"
        assert launching["data"]["state"] == "launching"
        assert succeeded["status"] == "informational"
        assert (
            succeeded["data"]["prediction_url"]
            == f"http://test.invalid/pe-test/deployments/{dep}/predict"
        )
        assert ready["status"] == "passing"
        assert ready["data"]["state"] == "ready"
        for event in (launching, succeeded, ready):
            assert event["data"]["action"] == "launch"
            assert event["data"]["model_package_id"] == model
            assert event["data"]["generation"] >= 1
        assert ready["message"].startswith(f"{dep} is ready")


async def test_editing_the_file_replaces_stops_and_forgets(make_settings, tmp_path):
    path = tmp_path / "desired.yaml"
    write_state(path, [deployment("d1", "m1"), deployment("d2", "m2"), deployment("d3", "m3")])
    agent = file_agent(make_settings, path)
    async with running(agent):
        await settled(agent)

        # A new model for d1, d2 desired stopped, d3 gone from the document.
        write_state(path, [deployment("d1", "m1b"), deployment("d2", "m2", state="stopped")])
        await wait_event(agent, "action.replace_model.succeeded", "d1")
        await wait_event(agent, "deployment.stopped", "d2")
        await wait_event(agent, "deployment.stopped", "d3")
        await eventually(lambda: "d3" not in agent.dispatcher.records, TIMEOUT)
        await settled(agent)

        assert agent.plugin.running() == {"d1": "m1b"}
        assert calls(agent.plugin, "d1") == [("launch", "d1", "m1"), ("replace_model", "d1", "m1b")]
        assert [c[0] for c in calls(agent.plugin, "d2")] == ["launch", "stop"]
        assert [c[0] for c in calls(agent.plugin, "d3")] == ["launch", "stop"]
        assert agent.dispatcher.records["d2"].state is DeploymentState.STOPPED
        assert agent.dispatcher.records["d1"].model_package_id == "m1b"

    assert types(agent, "d1")[3:] == [
        "deployment.replacing_model",
        "action.replace_model.succeeded",
        "deployment.ready",
    ]
    replaced = events(agent, "deployment.ready", "d1")[-1]
    assert replaced["data"]["model_package_id"] == "m1b"
    assert replaced["data"]["action"] == "replace_model"
    for dep in ("d2", "d3"):
        assert types(agent, dep)[3:] == [
            "deployment.shutting_down",
            "action.stop.succeeded",
            "deployment.stopped",
        ]


MALFORMED = [
    pytest.param("deployments: [ {id: d1, model_package_id: m1\n", "not valid YAML", id="bad-yaml"),
    pytest.param(
        "deployments:\n- {id: d1, model_package_id: m1, settings: {replicas: lots}}\n",
        "deployments.0.settings.replicas",
        id="wrong-type",
    ),
    pytest.param(
        "deployments:\n- {id: d1, model_package_id: m1}\n- {id: d1, model_package_id: m9}\n",
        "deployment id 'd1' appears more than once",
        id="duplicate-id",
    ),
    pytest.param(
        "prediction_environment: {id: other-pe}\ndeployments:\n- {id: d1, model_package_id: m9}\n",
        "prediction_environment.id is 'other-pe'",
        id="foreign-pe",
    ),
]


@pytest.mark.parametrize(("content", "problem"), MALFORMED)
async def test_malformed_file_is_refused_and_nothing_is_touched(
    make_settings, tmp_path, content, problem
):
    path = tmp_path / "desired.yaml"
    write_state(path, [deployment("d1", "m1"), deployment("d2", "m2")])
    agent = file_agent(make_settings, path)
    async with running(agent):
        await settled(agent)
        before = list(agent.plugin.calls)

        write_raw(path, content)
        invalid = await wait_event(agent, "desired_state.invalid")
        assert invalid["status"] == "failing"
        assert problem in invalid["message"]
        assert problem in invalid["data"]["error"]
        assert invalid["data"]["source"] == str(path)
        assert "previous desired state stays in force" in invalid["message"]
        assert agent.plugin.running() == {"d1": "m1", "d2": "m2"}
        assert agent.plugin.calls == before

        # A later valid document is applied, relative to the last good one.
        write_state(path, [deployment("d1", "m1"), deployment("d2", "m2"), deployment("d3", "m3")])
        await wait_event(agent, "deployment.ready", "d3")
        await settled(agent)
        assert agent.plugin.running() == {"d1": "m1", "d2": "m2", "d3": "m3"}
        assert agent.plugin.calls[len(before) :] == [
            c for c in agent.plugin.calls if c.deployment_id == "d3"
        ]

    assert len(events(agent, "desired_state.invalid")) == 1
    assert len(events(agent, "desired_state.loaded")) == 2


async def test_json_desired_state_file(make_settings, tmp_path):
    path = tmp_path / "desired.json"
    write_state(
        path,
        [deployment("j1", "m1", challenger_ids=["c1"]), deployment("j2", "m2", state="stopped")],
        prediction_environment={"id": "pe-test", "name": "the test PE"},
    )
    agent = file_agent(make_settings, path)
    async with running(agent):
        await settled(agent)
        assert agent.plugin.running() == {"j1": "m1"}
        assert agent.plugin.deployments["j1"].challenger_ids == ("c1",)
        assert agent.dispatcher.records["j2"].state is DeploymentState.STOPPED

        write_raw(path, b'{"deployments": [')
        invalid = await wait_event(agent, "desired_state.invalid")
        assert "not valid JSON" in invalid["message"]
        assert agent.plugin.running() == {"j1": "m1"}
    assert types(agent, "j1") == [
        "deployment.launching",
        "action.launch.succeeded",
        "deployment.ready",
    ]
