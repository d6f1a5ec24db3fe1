"""What an agent may report as a deployment's observed state.

Issue 9, item 6: ``PUT …/status`` with ``generation: 4611686018427387904``
(desired 1) got 204, and every later, correct report was silently ignored as
stale: the observed state froze (a database so frozen thaws on upgrade).
Item 9: ``prediction_url`` took ``javascript:`` URLs (a UI links to it); only
http and https are accepted.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.hub.support import V1, Running, answer, ok, running, settings

pytestmark = pytest.mark.anyio


async def _deployment(hub: Running) -> tuple[dict[str, Any], Any]:
    pe = await hub.pe()
    dep = await hub.deployment(pe["id"], (await hub.package())["id"])
    return dep, await hub.agent(pe["id"])


async def test_a_generation_ahead_of_desired_is_refused_and_freezes_nothing(hub: Running) -> None:
    dep, agent = await _deployment(hub)
    status_url = f"{V1}/deployments/{dep['id']}/status"
    ahead = {"state": "ready", "generation": 2**62}
    status, body = await answer(agent.put(status_url, json=ahead))
    assert status == 409 and body["error"] == "conflict", body
    assert "ahead of the desired generation 1" in body["message"]
    assert body["fields"][0]["field"] == "generation"
    status, _ = await answer(agent.put(status_url, json={"state": "ready", "generation": 2}))
    assert status == 409  # one ahead is ahead too

    correct = {"state": "ready", "generation": 1, "prediction_url": "http://10.0.0.5:8080/p"}
    await ok(agent.put(status_url, json=correct), 204)
    observed = (await ok(hub.admin.get(f"{V1}/deployments/{dep['id']}")))["observed"]
    assert (observed["state"], observed["generation"]) == ("ready", 1)

    await ok(hub.admin.post(f"{V1}/deployments/{dep['id']}/actions", json={"action": "stop"}))
    await ok(agent.put(status_url, json={"state": "stopped", "generation": 2}), 204)
    observed = (await ok(hub.admin.get(f"{V1}/deployments/{dep['id']}")))["observed"]
    assert (observed["state"], observed["generation"]) == ("stopped", 2)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "ftp://host/model",
        "http://",
        "http://host with space/",
        "",
    ],
)
async def test_prediction_urls_are_http_or_https_only(hub: Running, url: str) -> None:
    dep, agent = await _deployment(hub)
    report = {"state": "ready", "generation": 1, "prediction_url": url}
    status, body = await answer(agent.put(f"{V1}/deployments/{dep['id']}/status", json=report))
    assert status == 422 and body["fields"][0]["field"] == "prediction_url", body
    observed = (await ok(hub.admin.get(f"{V1}/deployments/{dep['id']}")))["observed"]
    assert observed["prediction_url"] is None


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8701/v1/deployments/d/predict", "https://models.example/p?x=1"]
)
async def test_http_and_https_prediction_urls_are_stored(hub: Running, url: str) -> None:
    dep, agent = await _deployment(hub)
    report = {"state": "ready", "generation": 1, "prediction_url": url}
    await ok(agent.put(f"{V1}/deployments/{dep['id']}/status", json=report), 204)
    observed = (await ok(hub.admin.get(f"{V1}/deployments/{dep['id']}")))["observed"]
    assert observed["prediction_url"] == url


@pytest.mark.backends("sqlite")  # a database of the old hub: PostgreSQL came after the fix
async def test_an_observed_state_frozen_before_the_fix_thaws_on_upgrade(
    tmp_path: Path, anyio_backend: str
) -> None:
    """A database written by the old hub, with a generation ahead stored: migration 3 fixes it."""
    hub_settings = settings(tmp_path)
    async with running(hub_settings) as hub:
        dep, _ = await _deployment(hub)
    await asyncio.to_thread(_freeze_as_version_2, hub_settings.database_path, dep["id"])
    async with running(hub_settings) as hub:
        agent = await hub.agent(dep["prediction_environment_id"])
        report = {"state": "ready", "generation": 1}
        await ok(agent.put(f"{V1}/deployments/{dep['id']}/status", json=report), 204)
        observed = (await ok(hub.admin.get(f"{V1}/deployments/{dep['id']}")))["observed"]
        assert (observed["state"], observed["generation"]) == ("ready", 1)


def _freeze_as_version_2(path: Path, deployment_id: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(
            "UPDATE deployments SET observed_state = 'ready', observed_generation = ? WHERE id = ?",
            (2**62, deployment_id),
        )
        conn.execute("DROP INDEX agent_tokens_by_pe")
        conn.execute("ALTER TABLE agent_tokens DROP COLUMN revoked_at")
        conn.execute("ALTER TABLE health_sources DROP COLUMN seq")
        conn.execute("DROP TABLE management_paused")  # migration 4, after the one under test
        conn.execute("ALTER TABLE deployments DROP COLUMN observed_grpc_target")  # migration 5
        conn.execute("ALTER TABLE agent_tokens DROP COLUMN kind")  # migration 6
        for table in ("windows", "hourly", "associations", "state"):  # migration 7
            conn.execute(f"DROP TABLE monitoring_{table}")
        conn.execute("PRAGMA user_version = 2")
    finally:
        conn.close()
