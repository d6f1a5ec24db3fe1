"""Moving a hub from SQLite to PostgreSQL (``pilothouse hub copy-to``) keeps everything."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pilothouse.cli import main
from pilothouse.hub.store.copying import TABLES
from tests.hub.receivers import LOCAL_TARGETS, receiving
from tests.hub.support import V1, Running, event, ok, query, running, settings

pytestmark = [pytest.mark.anyio, pytest.mark.backends("sqlite")]  # from SQLite, to PostgreSQL


async def _fill(hub: Running, receiver_url: str) -> dict[str, Any]:
    pe = await hub.pe("prod")
    other = await hub.pe("staging")
    token = await ok(hub.admin.post(f"{V1}/prediction-environments/{pe['id']}/agent-tokens"), 201)
    p1, p2 = await hub.package("iris", "1"), await hub.package("iris", "2")
    deps = [await hub.deployment(pe["id"], p1["id"], name=f"dep{i}") for i in range(3)]
    replace = {"action": "replace_model", "model_package_id": p2["id"]}
    await ok(hub.admin.post(f"{V1}/deployments/{deps[0]['id']}/actions", json=replace))
    await ok(hub.admin.delete(f"{V1}/deployments/{deps[2]['id']}"), 202)
    channel = await ok(hub.admin.post(f"{V1}/notification-channels", json={
        "name": "hook", "type": "webhook", "url": receiver_url}), 201)  # fmt: skip
    rule = {"name": "p", "channel_id": channel["id"], "statuses": ["failing"], "group_window_s": 0}
    await ok(hub.admin.post(f"{V1}/notification-policies", json=rule), 201)
    now = datetime.now(UTC)  # young: the retention set below keeps them
    events = [
        event(
            pe["id"],
            deployment_id=deps[i % 2]["id"],
            message=f"probe {i} crashed" * (i % 3),
            time=now - timedelta(seconds=i),
        )
        for i in range(1200)
    ] + [event(other["id"], status="failing", message="disk full on gpu-worker-7", time=now)]
    for start in range(0, len(events), 500):
        await ok(hub.admin.post(f"{V1}/events", json={"events": events[start : start + 500]}))
    await ok(hub.admin.put(f"{V1}/settings/retention", json={"days": 30}))
    off = {"use_management_agent": False}
    await ok(hub.admin.patch(f"{V1}/prediction-environments/{other['id']}", json=off))
    return {"pe": pe, "token": token["token"], "deps": deps, "packages": [p1, p2]}


async def _views(hub: Running, world: dict[str, Any]) -> dict[str, Any]:
    pe, deps = world["pe"], world["deps"]
    paths = [
        f"{V1}/prediction-environments",
        f"{V1}/prediction-environments/{pe['id']}",
        f"{V1}/prediction-environments/{pe['id']}/desired-state",
        f"{V1}/model-packages",
        f"{V1}/deployments",
        f"{V1}/deployments/{deps[0]['id']}",
        f"{V1}/deployments/{deps[0]['id']}/service-health",
        f"{V1}/notification-channels",
        f"{V1}/notification-policies",
        f"{V1}/notification-deliveries",
        f"{V1}/settings/retention",
    ]
    views = {path: await ok(hub.admin.get(path)) for path in paths}
    for params in ({"limit": "1000"}, {"q": "crashed", "limit": "50"}, {"q": "gpu-worker-7"}):
        views[repr(params)] = await ok(hub.admin.get(f"{V1}/events", params=params))
    return views


async def test_every_row_is_carried_and_the_hub_answers_the_same(
    tmp_path: Path, postgres_url: str
) -> None:
    state = tmp_path / "hub"
    sqlite_settings = settings(state, notifications=LOCAL_TARGETS)
    async with receiving() as receiver:
        async with running(sqlite_settings) as hub:
            world = await _fill(hub, receiver.url)
            await receiver.wait_for(1)  # the failing event was notified on SQLite
            before = await _views(hub, world)
        counts = {
            t: (await query(sqlite_settings, f"SELECT count(*) FROM {t}"))[0][0] for t in TABLES
        }
        code = await asyncio.to_thread(
            main, ["hub", "copy-to", postgres_url, "--state-dir", str(state)]
        )
        assert code == 0
        pg_settings = settings(state, notifications=LOCAL_TARGETS, database={"url": postgres_url})
        copied = {t: (await query(pg_settings, f"SELECT count(*) FROM {t}"))[0][0] for t in TABLES}
        assert copied == counts and counts["events"] > 1200 and counts["changes"] == 5
        async with running(pg_settings) as hub:
            after = await _views(hub, world)
            agent = hub.session(world["token"])  # tokens, archives (blobs), the channel's key
            pkg = world["packages"][1]["id"]
            await ok(agent.get(f"{V1}/model-packages/{pkg}/archive"))
            channel = before[f"{V1}/notification-channels"]["items"][0]["id"]
            await ok(hub.admin.post(f"{V1}/notification-channels/{channel}/test"))
            await receiver.wait_for(2)
            await asyncio.sleep(0.3)
            assert len(receiver.requests) == 2  # nothing old was notified again
    assert after == before
