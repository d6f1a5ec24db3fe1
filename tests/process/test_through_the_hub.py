"""Through a real hub: deploy, predict, replace under traffic, crash, refused replacements.

A real hub on 127.0.0.1, a real agent with the ``process`` plugin fetching the
packages from the hub, one real prediction server subprocess. One test walks
the whole story so the server starts once.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pilothouse.agent.runtime import Agent
from pilothouse.agent.settings import AgentSettings
from pilothouse.modelpkg import build_package
from pilothouse.plugins.process import ProcessPlugin
from tests.helpers import running
from tests.hub.support import V1, Running, ok, upload
from tests.hub.support import running as hub_running
from tests.hub.support import settings as hub_settings
from tests.process.support import (
    IRIS_1,
    IRIS_2,
    TIMEOUT,
    alive,
    base_url,
    broken_at_load,
    broken_at_predict,
    infer_v2,
    predict,
    reaped,
    serve_pids,
    traffic,
    until,
)

pytestmark = pytest.mark.anyio


async def _upload_dir(hub: Running, directory: Path, tmp: Path) -> str:
    _, archive = build_package(directory, tmp / "archives" / f"{directory.name}.tar.gz")
    created = await ok(upload(hub.admin, archive.read_bytes()), 201)
    return str(created["id"])


def _agent_settings(tmp: Path, url: str, pe: str, token: str) -> AgentSettings:
    return AgentSettings.load(None, {
        "prediction_environment": pe,
        "plugin": "process",
        "plugin_settings": {"stop_servers_on_unload": True, "check_interval_s": 0.2},
        "state_dir": tmp / "agent",
        "hub": {"url": url, "token": token, "poll_interval_s": 0.5,
                "reconnect_backoff_max_s": 0.3},
        # A refused replacement is tried again after errored_retry_s: not during this test.
        "actions": {"backoff_initial_s": 0.05, "errored_retry_s": 600, "backoff_max_s": 600},
        "health": {"interval_s": 3600, "heartbeat_interval_s": 0.5},
        "shutdown": {"grace_period_s": 10},
    })  # fmt: skip


async def _observed(hub: Running, dep_id: str) -> dict[str, Any]:
    got = await ok(hub.admin.get(f"{V1}/deployments/{dep_id}"))
    observed: dict[str, Any] = got["observed"]
    return observed


async def _until_observed(hub: Running, dep_id: str, state: str, generation: int) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        while True:
            obs = await _observed(hub, dep_id)
            if obs["state"] == state and obs["generation"] >= generation:
                return obs
            await asyncio.sleep(0.05)


async def _act(hub: Running, dep_id: str, action: str, package: str | None = None) -> None:
    body: dict[str, Any] = {"action": action}
    if package is not None:
        body["model_package_id"] = package
    await ok(hub.admin.post(f"{V1}/deployments/{dep_id}/actions", json=body))


async def _events(hub: Running, **filters: str) -> list[dict[str, Any]]:
    params = {"limit": "1000", **filters}
    items: list[dict[str, Any]] = []
    while True:
        page = await ok(hub.admin.get(f"{V1}/events", params=params))
        items.extend(page["items"])
        if not page["next_cursor"]:
            return items[::-1]  # oldest first
        params["cursor"] = page["next_cursor"]


async def _until_event(hub: Running, count: int = 1, **filters: str) -> list[dict[str, Any]]:
    async with asyncio.timeout(TIMEOUT):
        while True:
            found = await _events(hub, **filters)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.1)


async def _until_recovered(hub: Running, dep: str, after: str) -> dict[str, Any]:
    """The first failing event of ``dep`` after ``after``, once a passing one followed it."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            found = [e for e in await _events(hub, deployment_id=dep) if e["id"] > after]
            failing = [i for i, e in enumerate(found) if e["status"] == "failing"]
            if failing and any(e["status"] == "passing" for e in found[failing[0] :]):
                return found[failing[0]]
            await asyncio.sleep(0.1)


@pytest.mark.anyio
async def test_deploy_predict_replace_crash_and_refused_replacements(tmp_path: Path) -> None:
    async with reaped(tmp_path):
        async with hub_running(hub_settings(tmp_path / "hub")) as hub:
            pe = await hub.pe("local", platform="process")
            token = await ok(
                hub.admin.post(f"{V1}/prediction-environments/{pe['id']}/agent-tokens"), 201
            )
            v1 = await _upload_dir(hub, IRIS_1, tmp_path)
            v2 = await _upload_dir(hub, IRIS_2, tmp_path)
            bad_load = await _upload_dir(hub, broken_at_load(tmp_path / "bad-load"), tmp_path)
            bad_predict = await _upload_dir(
                hub, broken_at_predict(tmp_path / "bad-predict"), tmp_path
            )
            plugin = ProcessPlugin()
            agent = Agent(
                _agent_settings(tmp_path, hub.url, pe["id"], token["token"]), plugin=plugin
            )
            async with running(agent), aiohttp.ClientSession() as http:
                # --- deploy through the hub ------------------------------------------------
                dep = (await hub.deployment(pe["id"], v1, name="iris"))["id"]
                obs = await _until_observed(hub, dep, "ready", 1)
                assert obs["model_package_id"] == v1
                url = obs["prediction_url"]
                assert url.endswith(f"/v1/deployments/{dep}/predict"), url
                base = base_url(url)

                # --- predict through both APIs ---------------------------------------------
                status, doc = await predict(http, url)
                assert status == 200, doc
                assert doc["model_package_id"] == v1 and doc["deployment_id"] == dep
                assert doc["predictions"] == ["setosa", "virginica"]
                status, doc = await infer_v2(http, base, dep)
                assert status == 200, doc
                assert doc["model_name"] == dep and doc["model_version"] == v1
                outputs = {o["name"]: o for o in doc["outputs"]}
                assert outputs["predict"]["data"] == ["setosa", "virginica"]

                # --- replace under a steady stream of requests -----------------------------
                async with traffic(url) as seen:
                    await until(lambda: len(seen) >= 20, what="traffic flows")
                    await _act(hub, dep, "replace_model", v2)
                    await _until_observed(hub, dep, "ready", 2)
                    mark = len(seen)
                    await until(lambda: len(seen) >= mark + 20, what="traffic after the swap")
                failures = [s for s in seen if s[0] != 200]
                assert not failures, failures[:5]
                ids = [pkg for _, pkg in seen]
                assert ids[0] == v1 and ids[-1] == v2
                assert list(dict.fromkeys(ids)) == [v1, v2], "answers switch once, never back"

                # --- kill the server: the agent restarts it --------------------------------
                (server,) = plugin.servers.values()
                old_pid = server.pid
                assert old_pid is not None and serve_pids(tmp_path) == [old_pid]
                before = (await _events(hub, deployment_id=dep))[-1]["id"]
                os.kill(old_pid, signal.SIGKILL)
                restarted = await _until_event(hub, type="plugin.server_restarted")
                crashed = await _events(hub, type="plugin.server_crashed")
                assert crashed and crashed[0]["status"] == "failing"
                assert crashed[0]["data"]["exit_code"] == -signal.SIGKILL
                assert restarted[0]["status"] == "passing"
                assert crashed[0]["id"] < restarted[0]["id"], "failing, then passing"
                # The outage is on the deployment itself, where its users look: failing,
                # naming the crash, then passing again once it answers.
                outage = await _until_recovered(hub, dep, after=before)
                assert "SIGKILL" in outage["message"], outage
                assert server.pid != old_pid and not alive(old_pid)
                assert serve_pids(tmp_path) == [server.pid], "exactly one server runs"
                status, doc = await predict(http, url)
                assert status == 200 and doc["model_package_id"] == v2, doc

                # --- replacements the server refuses: the old model keeps answering --------
                generation = 2
                for bad in (bad_load, bad_predict):
                    generation += 1
                    async with traffic(url) as seen:
                        await until(lambda: len(seen) >= 10, what="traffic flows")
                        await _act(hub, dep, "replace_model", bad)
                        obs = await _until_observed(hub, dep, "ready", generation)
                    assert obs["model_package_id"] == v2, obs
                    assert set(seen) == {(200, v2)}, [s for s in seen if s != (200, v2)][:5]
                    status, doc = await infer_v2(http, base, dep)
                    assert status == 200 and doc["model_version"] == v2, doc

                await until(lambda: agent.link is not None and agent.link.outbox.size_bytes == 0)
                events = await _events(hub, deployment_id=dep, source="agent")

        failed = [e for e in events if e["type"] == "action.replace_model.failed"]
        assert [e["data"]["refused_model_package_id"] for e in failed] == [bad_load, bad_predict]
        for event, why in zip(failed, ("weights are corrupt", "cannot predict"), strict=True):
            assert event["status"] == "failing"
            assert event["data"]["old_model_in_use"] is True
            assert why in event["message"] and v2 in event["message"]
            after = events[events.index(event) + 1]
            assert after["type"] == "deployment.ready", after
            assert after["data"]["model_package_id"] == v2
            assert after["data"]["old_model_in_use"] is True
        types = [e["type"] for e in events]
        assert types[:6] == [
            "deployment.launching", "action.launch.succeeded", "deployment.ready",
            "deployment.replacing_model", "action.replace_model.succeeded", "deployment.ready",
        ]  # fmt: skip
        assert not serve_pids(tmp_path), "stop_servers_on_unload stopped the server"
