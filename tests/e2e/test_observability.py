"""The local HTTP endpoint (/healthz, /metrics) and JSON logs of a running agent."""

from __future__ import annotations

import io
import logging

import aiohttp
import orjson
import pytest
from helpers import running
from prometheus_client.parser import text_string_to_metric_families

from pilothouse.agent.runtime import Agent
from pilothouse.foundation import logs
from pilothouse.foundation.settings import LogSettings

from .support import deployment, settled, sim, wait_event, write_state

pytestmark = pytest.mark.anyio

TASKS = {
    "event writer", "http endpoint", "dispatcher", "health reporter", "heartbeat", "intake",
    "statistics relay", "rollback guard",
}  # fmt: skip


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_healthz_and_metrics(make_settings, tmp_path):
    path = tmp_path / "desired.yaml"
    write_state(path, [deployment("d1", "m1"), deployment("d2", "m2")])
    settings = make_settings(intake={"desired_state_file": path}, http={"enabled": True, "port": 0})
    agent = Agent(settings, plugin=sim())
    async with running(agent):
        await settled(agent)
        await wait_event(agent, "deployment.ready", "d2")
        assert agent.http is not None and agent.http.port
        base = f"http://127.0.0.1:{agent.http.port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/healthz") as resp:
                assert resp.status == 200
                health = await resp.json()
            async with session.get(f"{base}/metrics") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain")
                text = await resp.text()

    assert health["status"] == "ok"
    assert health["down"] == []
    assert health["ready"] is True
    assert health["prediction_environment_id"] == "pe-test"
    assert set(health["tasks"]) == TASKS
    assert all(health["tasks"].values())
    assert health["deployments"]["ready"] == 2

    assert 'pilothouse_agent_actions_total{action="launch",result="succeeded"} 2.0' in text
    assert "pilothouse_agent_action_duration_seconds" in text
    assert "pilothouse_agent_queue_depth" in text
    assert 'pilothouse_agent_deployments{state="ready"} 2.0' in text
    assert "pilothouse_agent_task_restarts" in text

    values = samples(text)
    assert (
        values[("pilothouse_agent_actions_total", (("action", "launch"), ("result", "succeeded")))]
        == 2
    )
    assert values[("pilothouse_agent_action_duration_seconds_count", (("action", "launch"),))] == 2
    assert values[("pilothouse_agent_deployments", (("state", "ready"),))] == 2
    assert values[("pilothouse_agent_deployments", (("state", "errored"),))] == 0
    for queue in ("intake", "workers", "events"):
        assert values[("pilothouse_agent_queue_depth", (("queue", queue),))] >= 0
    assert values[("pilothouse_agent_events_total", (("status", "passing"),))] >= 2


async def test_healthz_after_stop_refuses_connections(make_settings):
    agent = Agent(make_settings(http={"enabled": True, "port": 0}), plugin=sim())
    async with running(agent):
        await wait_event(agent, "agent.started")
        port = agent.http.port
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/healthz") as resp,
        ):
            assert resp.status == 200
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(f"http://127.0.0.1:{port}/healthz"):
                pass


async def json_logs(agent: Agent, until_type: str, dep: str) -> list[dict]:
    """Run ``agent`` with JSON logs into a buffer until an event shows; the parsed lines."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handle = logs.configure(LogSettings(format="json", level="INFO"), stream=stream)
    try:
        async with running(agent):
            await wait_event(agent, until_type, dep)
    finally:
        handle.close()
        root.setLevel(level)
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def one_deployment_agent(make_settings, tmp_path, **plugin) -> Agent:
    path = tmp_path / "desired.yaml"
    write_state(path, [deployment("d1", "m1")])
    return Agent(make_settings(intake={"desired_state_file": path}), plugin=sim(**plugin))


async def test_json_logs_carry_the_deployment_id(make_settings, tmp_path):
    lines = await json_logs(one_deployment_agent(make_settings, tmp_path), "deployment.ready", "d1")
    assert lines, "the agent logged nothing"
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)
    about_d1 = [line for line in lines if line.get("deployment_id") == "d1"]
    ready = [line for line in about_d1 if line.get("event_type") == "deployment.ready"]
    assert len(ready) == 1
    assert ready[0]["logger"] == "pilothouse.events"
    assert ready[0]["level"] == "info"
    assert ready[0]["status"] == "passing"
    assert ready[0]["event_id"]
    assert "d1 is ready" in ready[0]["message"]


async def test_json_logs_of_plugin_code_take_the_deployment_id_from_context(
    make_settings, tmp_path
):
    agent = one_deployment_agent(make_settings, tmp_path, crash_rate=1.0)
    lines = await json_logs(agent, "action.launch.failed", "d1")
    crashes = [line for line in lines if line["logger"] == "pilothouse.actions"]
    assert crashes, "the plugin's crash was not logged"
    assert crashes[0]["deployment_id"] == "d1"  # set by the worker, not passed by the runner
    assert crashes[0]["level"] == "error"
    assert crashes[0]["message"].startswith("plugin raised during launch")


async def test_json_logs_put_the_traceback_in_its_own_field(make_settings, tmp_path):
    agent = one_deployment_agent(make_settings, tmp_path, crash_rate=1.0)
    lines = await json_logs(agent, "action.launch.failed", "d1")
    crash = next(line for line in lines if line["logger"] == "pilothouse.actions")
    assert crash["message"] == "plugin raised during launch"
    assert "RuntimeError: simulated crash in launch" in crash["exception"]
