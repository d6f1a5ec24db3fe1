"""Through a real agent: what the docker plugin finds reaches the event log at once.

An agent with the docker plugin, standalone, with a health interval of an
hour — so nothing here can come from a health round. A server container
killed behind the agent's back is a ``failing`` event on its deployment in
the event log within two seconds (pushed by the plugin from the engine's
event stream through ``ctx.report``), then ``passing`` again once the crash
watch has started it and a probe succeeded. A missing image is a clear
``failing`` event naming the image, and the agent goes on (no crash loop).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.desired import DesiredDeployment, DesiredState
from pilothouse.plugins.docker import DockerPlugin
from tests.docker.support import RULES, TIMEOUT, new_owner, purge, settings, until
from tests.helpers import read_events, running

pytestmark = pytest.mark.anyio

PUSHED_WITHIN_S = 2.0


def _agent(make_settings: Any, image: str, owner: str) -> Agent:
    plugin_settings = settings(image, owner, packages={"rules": RULES})
    agent_settings = make_settings(
        plugin="docker",
        plugin_settings=plugin_settings,
        actions={"timeout_s": TIMEOUT, "errored_retry_s": 3600, "backoff_max_s": 0.5},
    )
    return Agent(agent_settings, plugin=DockerPlugin())


def _health(events: list[dict[str, Any]], dep_id: str) -> list[dict[str, Any]]:
    """The deployment's events that say its health (failing or passing)."""
    return [
        e
        for e in events
        if e.get("deployment_id") == dep_id and e["status"] in ("failing", "passing")
    ]


async def test_a_killed_server_is_a_failing_event_in_the_log_within_two_seconds(
    tmp_path: Path, pilothouse_image: str, make_settings: Any
) -> None:
    owner = new_owner()
    agent = _agent(make_settings, pilothouse_image, owner)
    log = agent.settings.event_log_path
    try:
        async with running(agent):
            agent.apply(
                DesiredState(deployments=(DesiredDeployment(id="a", model_package_id="rules"),))
            )
            await until(
                lambda: any(e["type"] == "deployment.ready" for e in read_events(log)),
                TIMEOUT,
                "the deployment ready",
            )
            plugin = agent.plugin
            assert isinstance(plugin, DockerPlugin)
            container_id = plugin.servers["shared"].endpoint.id
            before = len(read_events(log))
            async with aiodocker.Docker() as client:
                killed_at = time.monotonic()
                await client.containers.container(str(container_id)).kill()
            await until(
                lambda: any(
                    e["status"] == "failing" for e in _health(read_events(log)[before:], "a")
                ),
                TIMEOUT,
                "a failing event for the deployment",
            )
            pushed_after = time.monotonic() - killed_at
            await until(
                lambda: (
                    [e["status"] for e in _health(read_events(log)[before:], "a")]
                    == ["failing", "passing"]
                ),
                TIMEOUT,
                "passing again",
            )
        print(f"\ndocker kill -> failing event in the event log after {pushed_after:.3f} s")
        assert pushed_after < PUSHED_WITHIN_S
        failing = _health(read_events(log)[before:], "a")[0]
        assert "killed by SIGKILL" in failing["message"], failing["message"]
        assert failing["data"]["exit_code"] == 137 and failing["data"]["log_tail"], failing
    finally:
        await purge(owner)


async def test_a_missing_image_is_a_clear_failing_event_and_the_agent_goes_on(
    tmp_path: Path, make_settings: Any, docker_engine: dict[str, Any]
) -> None:
    owner = new_owner()
    agent = _agent(make_settings, "pilothouse-no-such-image:nope", owner)
    log = agent.settings.event_log_path
    try:
        async with running(agent) as task:
            agent.apply(
                DesiredState(deployments=(DesiredDeployment(id="a", model_package_id="rules"),))
            )
            await until(
                lambda: any(
                    e["status"] == "failing" and e.get("deployment_id") == "a"
                    for e in read_events(log)
                ),
                TIMEOUT,
                "a failing event",
            )
            assert not task.done()
        events = read_events(log)
        failing = [e for e in events if e["status"] == "failing" and e.get("deployment_id") == "a"]
        assert "pilothouse-no-such-image:nope" in failing[0]["message"], failing[0]
        assert not [
            e for e in events if e["type"] in ("agent.crash_loop", "plugin.task_crash_loop")
        ]
    finally:
        await purge(owner)
