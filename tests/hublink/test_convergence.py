"""After every decision the hub's observed state is what runs, at the desired generation.

No-ops included (a stop of a stopped deployment, a launch of a ready one), and
every reconcile outcome after a restart ("unchanged" too). An action that an
agent's stop interrupted, or that was asked for while no agent ran, is done at
the next start, even when the same model already runs.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from pilothouse.agent.runtime import Agent
from pilothouse.agent.settings import AgentSettings
from pilothouse.plugins.simulated import SimulatedPlugin, SimulatedPluginSettings
from tests.helpers import eventually, running
from tests.hub.support import ADMIN, V1, Running, ok, package_bytes, upload
from tests.hub.support import running as hub_running
from tests.hub.support import settings as hub_settings

pytestmark = pytest.mark.anyio


async def _setup(hub: Running) -> tuple[str, str, str]:
    pe = await hub.pe("prod")
    token = await ok(hub.admin.post(f"{V1}/prediction-environments/{pe['id']}/agent-tokens"), 201)
    package = await ok(upload(hub.admin, package_bytes("iris", "1")), 201)
    return pe["id"], token["token"], package["id"]


def _agent(
    tmp: Path, hub: Running, pe: str, token: str, *, grace_s: float = 5, **plugin: Any
) -> Agent:
    settings = AgentSettings.load(None, {
        "prediction_environment": pe, "state_dir": tmp / "agent",
        "hub": {"url": hub.url, "token": token, "poll_interval_s": 0.5,
                "reconnect_backoff_max_s": 0.3},
        "actions": {"backoff_initial_s": 0.01, "errored_retry_s": 0.05},
        "health": {"interval_s": 3600, "heartbeat_interval_s": 3600},
        "shutdown": {"grace_period_s": grace_s},
    })  # fmt: skip
    sim = SimulatedPluginSettings(state_file=tmp / "infrastructure.json", write_through=True,
                                  **plugin)  # fmt: skip
    return Agent(settings, plugin=SimulatedPlugin(sim))


async def _act(hub: Running, dep_id: str, action: str) -> int:
    got = await ok(hub.admin.post(f"{V1}/deployments/{dep_id}/actions", json={"action": action}))
    generation: int = got["desired"]["generation"]
    return generation


async def _observed(hub: Running, dep_id: str, state: str, generation: int) -> dict[str, Any]:
    """Wait until the hub observes ``state`` at exactly ``generation``."""
    obs: dict[str, Any] = {}
    for _ in range(500):
        obs = (await ok(hub.admin.get(f"{V1}/deployments/{dep_id}")))["observed"]
        if obs["state"] == state and obs["generation"] == generation:
            return obs
        await asyncio.sleep(0.02)
    raise AssertionError(f"{dep_id} never observed {state} at generation {generation}: {obs}")


async def test_no_op_actions_are_observed_at_their_generation(tmp_path: Path) -> None:
    async with hub_running(hub_settings(tmp_path / "hub")) as hub:
        pe, token, package = await _setup(hub)
        agent = _agent(tmp_path, hub, pe, token)
        async with running(agent):
            dep = (await hub.deployment(pe, package, name="fraud"))["id"]
            await _observed(hub, dep, "ready", 1)
            await _observed(hub, dep, "ready", await _act(hub, dep, "launch"))
            await _observed(hub, dep, "stopped", await _act(hub, dep, "stop"))
            await _observed(hub, dep, "stopped", await _act(hub, dep, "stop"))
            await _observed(hub, dep, "ready", await _act(hub, dep, "launch"))
        calls = [c.action for c in agent.plugin.calls]
    assert calls == ["launch", "stop", "launch"], "a no-op asks nothing of the plugin"


async def test_launch_wait_on_a_ready_deployment_returns_at_once(tmp_path: Path) -> None:
    async with hub_running(hub_settings(tmp_path / "hub")) as hub:
        pe, token, package = await _setup(hub)
        async with running(_agent(tmp_path, hub, pe, token)):
            dep = (await hub.deployment(pe, package, name="fraud"))["id"]
            await _observed(hub, dep, "ready", 1)
            env = {**os.environ, "PILOTHOUSE_HUB_URL": hub.url, "PILOTHOUSE_TOKEN": ADMIN}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "pilothouse", "deployment", "action", dep, "launch",
                "--wait", "--timeout", "30", env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out, err)
    assert f"{dep}: ready (generation 2" in out.decode()


async def test_a_restart_reports_what_runs_at_the_generation_desired_meanwhile(
    tmp_path: Path,
) -> None:
    async with hub_running(hub_settings(tmp_path / "hub")) as hub:
        pe, token, package = await _setup(hub)
        first = _agent(tmp_path, hub, pe, token)
        async with running(first):
            dep = (await hub.deployment(pe, package, name="fraud"))["id"]
            other = (await hub.deployment(pe, package, name="other"))["id"]
            await _observed(hub, dep, "ready", 1)
            await _observed(hub, other, "stopped", await _act(hub, other, "stop"))
        # No agent runs: a launch of the ready one, a stop of the stopped one.
        launched = await _act(hub, dep, "launch")
        stopped = await _act(hub, other, "stop")
        second = _agent(tmp_path, hub, pe, token)
        async with running(second):
            await _observed(hub, dep, "ready", launched)
            await _observed(hub, other, "stopped", stopped)
        assert second.plugin.calls == [], "nothing to do: reconcile found it all as desired"


async def test_a_relaunch_asked_for_while_no_agent_ran_is_done_at_start(tmp_path: Path) -> None:
    async with hub_running(hub_settings(tmp_path / "hub")) as hub:
        pe, token, package = await _setup(hub)
        async with running(_agent(tmp_path, hub, pe, token)):
            dep = (await hub.deployment(pe, package, name="fraud"))["id"]
            await _observed(hub, dep, "ready", 1)
        relaunched = await _act(hub, dep, "relaunch")
        second = _agent(tmp_path, hub, pe, token)
        async with running(second):
            await _observed(hub, dep, "ready", relaunched)
        assert [c.action for c in second.plugin.calls] == ["stop", "launch"]


async def test_a_relaunch_cut_short_by_a_stop_is_redone_at_the_next_start(tmp_path: Path) -> None:
    async with hub_running(hub_settings(tmp_path / "hub")) as hub:
        pe, token, package = await _setup(hub)
        first = _agent(tmp_path, hub, pe, token, grace_s=0, delays={"stop_s": 30})
        async with running(first):
            dep = (await hub.deployment(pe, package, name="fraud"))["id"]
            await _observed(hub, dep, "ready", 1)
            relaunched = await _act(hub, dep, "relaunch")
            await eventually(lambda: [c.action for c in first.plugin.calls] == ["launch", "stop"])
        # Stopped mid-relaunch (grace 0): the old instance still runs, same model.
        assert first.plugin.running() == {dep: package}
        second = _agent(tmp_path, hub, pe, token)
        async with running(second):
            await _observed(hub, dep, "ready", relaunched)
        assert [c.action for c in second.plugin.calls] == ["stop", "launch"]
        assert second.plugin.deployments[dep].generation == relaunched
