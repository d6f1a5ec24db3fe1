"""Presence: a silent agent is marked offline with an event; a heartbeat brings it back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.hub.support import V1, answer, ok, running, settings

pytestmark = pytest.mark.anyio


async def test_offline_after_the_timeout_and_online_again(
    tmp_path: Path, anyio_backend: str
) -> None:
    async with running(settings(tmp_path, agents={"heartbeat_timeout_s": 0.3})) as hub:
        pe = await hub.pe()
        agent = await hub.agent(pe["id"])
        beat = {
            "agent_version": "1.2",
            "deployments": {"ready": 3},
            "environment_status": "passing",
        }
        await ok(agent.post(f"{V1}/prediction-environments/{pe['id']}/heartbeat", json=beat), 204)
        info = (await ok(agent.get(f"{V1}/prediction-environments/{pe['id']}")))["agent"]
        assert info["online"] is True and info["last_heartbeat_at"]
        assert info["info"]["deployments"] == {"ready": 3}

        await _until(hub, pe["id"], online=False)
        await ok(agent.post(f"{V1}/prediction-environments/{pe['id']}/heartbeat"), 204)
        await _until(hub, pe["id"], online=True)

        page = await ok(hub.admin.get(f"{V1}/events", params={"source": "hub"}))
        kinds = [(e["type"], e["status"]) for e in page["items"]][::-1]
        assert kinds == [
            ("agent.online", "passing"),
            ("agent.offline", "failing"),
            ("agent.online", "passing"),
        ]
        assert all(e["prediction_environment_id"] == pe["id"] for e in page["items"])


async def test_heartbeat_of_unknown_pe_is_404(tmp_path: Path, anyio_backend: str) -> None:
    async with running(settings(tmp_path)) as hub:
        status, _ = await answer(hub.admin.post(f"{V1}/prediction-environments/pe-x/heartbeat"))
        assert status == 404


async def _until(hub: object, pe_id: str, *, online: bool, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        env = await ok(hub.admin.get(f"{V1}/prediction-environments/{pe_id}"))  # type: ignore[attr-defined]
        if env["agent"]["online"] is online:
            return
        assert loop.time() < deadline, f"agent never became online={online}"
        await asyncio.sleep(0.05)
