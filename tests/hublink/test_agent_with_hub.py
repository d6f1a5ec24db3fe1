"""A real agent (test plugin) against a real hub, over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from pilothouse.agent.runtime import Agent
from pilothouse.agent.settings import AgentSettings
from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.hub import HubSettings
from pilothouse.hub.api.schemas import ActionRequest
from pilothouse.hub.service.deployments import Deployments
from pilothouse.hub.store.sqlite.store import open_sqlite
from pilothouse.plugins.simulated import SimulatedPlugin, SimulatedPluginSettings
from tests.helpers import eventually, read_events, running
from tests.hub.support import V1, Running, ok, package_bytes, upload
from tests.hub.support import running as hub_running
from tests.hub.support import settings as hub_settings


async def _setup(hub: Running) -> tuple[str, str, list[str]]:
    pe = await hub.pe("prod")
    token = await ok(hub.admin.post(f"{V1}/prediction-environments/{pe['id']}/agent-tokens"), 201)
    packages = [
        (await ok(upload(hub.admin, package_bytes("iris", v)), 201))["id"] for v in ("1", "2")
    ]
    return pe["id"], token["token"], packages


def _agent_settings(tmp: Path, url: str, pe: str, token: str, **extra: Any) -> AgentSettings:
    return AgentSettings.load(None, {
        "prediction_environment": pe,
        "state_dir": tmp / "agent",
        "hub": {"url": url, "token": token, "poll_interval_s": 0.5,
                "reconnect_backoff_max_s": 0.3},
        "actions": {"backoff_initial_s": 0.01, "errored_retry_s": 0.05},
        "health": {"interval_s": 3600, "heartbeat_interval_s": 0.2},
        "shutdown": {"grace_period_s": 5},
        **extra,
    })  # fmt: skip


async def _events(hub: Running, **filters: str) -> list[dict[str, Any]]:
    params = {"limit": "1000", **filters}
    items: list[dict[str, Any]] = []
    while True:
        page = await ok(hub.admin.get(f"{V1}/events", params=params))
        items.extend(page["items"])
        if not page["next_cursor"]:
            return items[::-1]  # oldest first
        params["cursor"] = page["next_cursor"]


async def _deployment(hub: Running, dep_id: str) -> dict[str, Any]:
    result: dict[str, Any] = await ok(hub.admin.get(f"{V1}/deployments/{dep_id}"))
    return result


async def _until_observed(hub: Running, dep_id: str, state: str, generation: int) -> None:
    for _ in range(500):
        obs = (await _deployment(hub, dep_id))["observed"]
        if obs["state"] == state and obs["generation"] >= generation:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{dep_id} never observed {state} at generation {generation}: {obs}")


async def _until_health(hub: Running, dep_id: str, status: str) -> None:
    for _ in range(500):
        health = (await _deployment(hub, dep_id))["service_health"]
        if health["status"] == status:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{dep_id}'s service health never became {status}: {health}")


@pytest.mark.anyio
async def test_created_deployment_is_launched_replaced_and_stopped(tmp_path: Path) -> None:
    async with hub_running(hub_settings(tmp_path / "hub")) as hub:
        pe, token, (p1, p2) = await _setup(hub)
        plugin = SimulatedPlugin(SimulatedPluginSettings(delays={"launch_s": 0.05}))
        agent = Agent(_agent_settings(tmp_path, hub.url, pe, token), plugin=plugin)
        async with running(agent):
            dep = await hub.deployment(pe, p1, name="fraud")
            await _until_observed(hub, dep["id"], "ready", 1)
            assert plugin.running() == {dep["id"]: p1}
            got = await _deployment(hub, dep["id"])
            assert got["observed"]["prediction_url"].endswith(f"/deployments/{dep['id']}/predict")
            # Service health follows the agent's events, which come through its outbox on
            # their own path: the observed state may arrive first.
            await _until_health(hub, dep["id"], "passing")

            body = {"action": "replace_model", "model_package_id": p2}
            await ok(hub.admin.post(f"{V1}/deployments/{dep['id']}/actions", json=body))
            await _until_observed(hub, dep["id"], "ready", 2)
            assert plugin.running() == {dep["id"]: p2}

            await ok(hub.admin.post(f"{V1}/deployments/{dep['id']}/actions",
                                    json={"action": "stop"}))  # fmt: skip
            await _until_observed(hub, dep["id"], "stopped", 3)
            assert plugin.running() == {}
            await eventually(lambda: agent.link is not None and agent.link.outbox.size_bytes == 0)
        events = await _events(hub, deployment_id=dep["id"], source="agent")
        types = [e["type"] for e in events]
        assert types == [
            "deployment.launching", "action.launch.succeeded", "deployment.ready",
            "deployment.replacing_model", "action.replace_model.succeeded", "deployment.ready",
            "deployment.shutting_down", "action.stop.succeeded", "deployment.stopped",
        ]  # fmt: skip
        assert [e["id"] for e in events] == sorted(e["id"] for e in events)


@pytest.mark.anyio
async def test_hub_restart_mid_stream_misses_nothing(tmp_path: Path) -> None:
    port = _free_port()
    settings = hub_settings(tmp_path / "hub", listen={"host": "127.0.0.1", "port": port})
    async with hub_running(settings) as hub:
        pe, token, (p1, p2) = await _setup(hub)
        dep = await hub.deployment(pe, p1, name="churn")
    plugin = SimulatedPlugin()
    agent = Agent(_agent_settings(tmp_path, f"http://127.0.0.1:{port}", pe, token), plugin=plugin)
    log = agent.settings.event_log_path
    async with running(agent):
        async with hub_running(settings) as hub:
            await _until_observed(hub, dep["id"], "ready", 1)
        # The hub is down, and the agent knows it.
        await eventually(lambda: "agent.hub_disconnected" in _types(log), timeout=20)
        # The change is made while the hub's HTTP server is stopped: by the hub's own
        # deployment service, on its database. The agent cannot hear of it now...
        changed = await _act_while_down(settings, dep["id"], "replace_model", p2)
        assert changed.desired.generation == 2
        assert plugin.running() == {dep["id"]: p1}
        # ...and applies it once the hub is back, from the snapshot it fetches on reconnecting.
        async with hub_running(settings) as hub:
            await _until_observed(hub, dep["id"], "ready", 2)
            assert plugin.running() == {dep["id"]: p2}
            second = await hub.deployment(pe, p1, name="second")
            await _until_observed(hub, second["id"], "ready", 1)
    seen = _types(log)
    down, back = seen.index("agent.hub_disconnected"), seen.index("agent.hub_connected")
    assert down < back < seen.index("deployment.replacing_model"), seen
    replaced = [e for e in read_events(log) if e["type"] == "action.replace_model.succeeded"]
    assert [(e["deployment_id"], e["data"]["model_package_id"], e["data"]["generation"])
            for e in replaced] == [(dep["id"], p2, 2)]  # fmt: skip


async def _act_while_down(settings: HubSettings, dep_id: str, action: str, package: str) -> Any:
    """Apply an action through the hub's service layer, straight on its database."""
    async with open_sqlite(settings.database_path, settings.database, lambda _: None) as store:
        request = ActionRequest.model_validate({"action": action, "model_package_id": package})
        return await Deployments(store).act(dep_id, request)


def _types(log: Path) -> list[str]:
    return [e["type"] for e in read_events(log)]


@pytest.mark.anyio
async def test_events_made_while_the_hub_is_down_arrive_once_in_order(tmp_path: Path) -> None:
    port = _free_port()
    settings = hub_settings(tmp_path / "hub", listen={"host": "127.0.0.1", "port": port})
    async with hub_running(settings) as hub:
        pe, token, (p1, _) = await _setup(hub)
        dep = await hub.deployment(pe, p1, name="spool")
    agent = Agent(_agent_settings(tmp_path, f"http://127.0.0.1:{port}", pe, token),
                  plugin=SimulatedPlugin())  # fmt: skip
    async with running(agent):
        link, bus = agent.link, agent.bus
        assert link is not None and bus is not None
        async with hub_running(settings) as hub:
            await _until_observed(hub, dep["id"], "ready", 1)
            await eventually(lambda: link.outbox.size_bytes == 0)
        for i in range(300):  # the hub is down now: these wait in the outbox
            bus.report("test.spooled", Status.INFORMATIONAL, f"spooled {i}", data={"seq": i})
        await eventually(lambda: link.outbox.size_bytes > 0)
        async with hub_running(settings) as hub:
            await eventually(lambda: link.outbox.size_bytes == 0, timeout=20)
            spooled = await _events(hub, type="test.spooled")
            everything = await _events(hub, prediction_environment_id=pe)
    assert [e["data"]["seq"] for e in spooled] == list(range(300))
    ids = [e["id"] for e in everything]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert any(e["type"] == "agent.hub_unreachable" for e in everything)


@pytest.mark.anyio
async def test_a_killed_agent_is_marked_offline(tmp_path: Path) -> None:
    settings = hub_settings(tmp_path / "hub", agents={"heartbeat_timeout_s": 1.0})
    async with hub_running(settings) as hub:
        pe, token, _ = await _setup(hub)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pilothouse", "agent", "run", "--hub-url", hub.url,
            "--token", token, "--prediction-environment", pe, "--plugin", "test",
            "--state-dir", str(tmp_path / "agent"),
            env={**os.environ, "PILOTHOUSE_HEALTH__HEARTBEAT_INTERVAL_S": "0.2"},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await _until_online(hub, pe, online=True)
            proc.kill()
            await proc.wait()
            await _until_online(hub, pe, online=False)
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        offline = await _events(hub, prediction_environment_id=pe, type="agent.offline")
        assert len(offline) == 1 and offline[0]["status"] == "failing"


async def _until_online(hub: Running, pe: str, *, online: bool) -> None:
    for _ in range(300):
        got = await ok(hub.admin.get(f"{V1}/prediction-environments/{pe}"))
        if got["agent"]["online"] is online:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"agent of {pe} never became {'online' if online else 'offline'}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
