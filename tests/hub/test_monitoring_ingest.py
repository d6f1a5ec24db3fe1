"""Statistics windows in: stored once each, only an agent's own, nothing of a bad batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from pilothouse.foundation.domain.monitoring import MAX_WINDOWS_PER_BATCH
from tests.hub.stats_windows import AGENT_MONITORING, minute, post, series, stamp, window
from tests.hub.support import Running, answer, rows, running, settings

pytestmark = pytest.mark.anyio


async def _setup(hub: Running, name: str = "prod") -> tuple[dict[str, Any], aiohttp.ClientSession]:
    pe = await hub.pe(name)
    pkg = await hub.package(f"model-{name}")
    dep = await hub.deployment(pe["id"], pkg["id"], name=f"dep-{name}")
    return dep, await hub.agent(pe["id"])


async def test_a_batch_delivered_twice_is_stored_once(hub: Running) -> None:
    dep, agent = await _setup(hub)
    pkg = dep["desired"]["model_package_id"]
    windows = [window(dep["id"], pkg, minute(i), requests=10 * (i + 1)) for i in range(3)]
    assert await post(agent, windows) == (200, {"accepted": 3, "duplicates": 0})
    assert await post(agent, windows) == (200, {"accepted": 0, "duplicates": 3})
    extra = window(dep["id"], pkg, minute(3), requests=5)
    assert await post(agent, [*windows[1:], extra]) == (200, {"accepted": 1, "duplicates": 2})
    assert await rows(hub, "monitoring_windows") == 4
    found = await series(
        hub.admin, dep["id"], **{"from": stamp(minute(0)), "to": stamp(minute(10)), "step": "600"}
    )
    assert [p["requests"] for p in found["points"]] == [10 + 20 + 30 + 5]


async def test_windows_of_another_environments_deployment_are_refused(hub: Running) -> None:
    theirs, _ = await _setup(hub, "theirs")
    mine, agent = await _setup(hub, "mine")
    own = window(mine["id"], mine["desired"]["model_package_id"], minute(0))
    foreign = window(theirs["id"], theirs["desired"]["model_package_id"], minute(0))
    status, body = await post(agent, [own, foreign])
    assert status == 403, body
    assert body["fields"][0]["field"] == "windows.1.deployment_id"
    assert theirs["id"] in body["message"]
    status, body = await post(agent, [window("dep-unknown", "pkg", minute(0))])
    assert status == 404 and body["fields"][0]["field"] == "windows.0.deployment_id"
    assert await rows(hub, "monitoring_windows") == 0  # not even the agent's own window
    assert (await post(agent, [own]))[0] == 200


async def test_malformed_windows_are_refused_naming_the_field(hub: Running) -> None:
    dep, agent = await _setup(hub)
    good = orjson.loads(
        window(dep["id"], dep["desired"]["model_package_id"], minute(0)).model_dump_json()
    )
    cases: list[tuple[dict[str, Any], str]] = [
        ({"requests": "ten"}, "windows.0.requests"),
        ({"requests": -1}, "windows.0.requests"),
        ({"server_errors": 1000}, "windows.0"),
        ({"end": good["start"]}, "windows.0"),
        ({"latency": {"counts": [1, 2], "bounds": [0.1, 0.2]}}, "windows.0.latency"),
        ({"surprise": 1}, "windows.0.surprise"),
        ({"end": "2999-01-01T00:00:00Z"}, "windows.0.end"),
    ]
    for change, field in cases:
        status, body = await answer(agent.post(AGENT_MONITORING, json={"windows": [good | change]}))
        assert status == 422, (change, body)
        assert any(f["field"].startswith(field) for f in body["fields"]), (change, body)
    status, body = await answer(
        agent.post(
            AGENT_MONITORING, data=b"{not json", headers={"Content-Type": "application/json"}
        )
    )
    assert status == 400 and body["error"] == "bad_json"
    assert await rows(hub, "monitoring_windows") == 0


async def test_a_hostile_batch_is_refused_without_storing_anything(tmp_path: Path) -> None:
    async with running(
        settings(tmp_path / "hub", monitoring={"max_batch_bytes": 256 * 1024})
    ) as hub:
        dep, agent = await _setup(hub)
        pkg = dep["desired"]["model_package_id"]
        good = orjson.loads(window(dep["id"], pkg, minute(0)).model_dump_json())
        huge = {"windows": [good] * 400}  # ~0.5 MB: over the limit
        status, body = await answer(
            agent.post(
                AGENT_MONITORING,
                data=orjson.dumps(huge),
                headers={"Content-Type": "application/json"},
            )
        )
        assert status == 413, body
        too_many = {"windows": [{"id": "x"}] * (MAX_WINDOWS_PER_BATCH + 1)}
        status, body = await answer(agent.post(AGENT_MONITORING, json=too_many))
        assert status == 422 and body["fields"][0]["field"] == "windows"
        deep: Any = 1
        for _ in range(400):
            deep = {"a": [deep]}
        status, body = await answer(agent.post(AGENT_MONITORING, json={"windows": [good, deep]}))
        assert status == 400 and "recursion" in body["message"], body  # refused unparsed
        nested: Any = 1
        for _ in range(20):
            nested = {"a": [nested]}
        wrong = good | {"features": {"x1": nested}, "latency": [[["deep"]]], "challengers": "all"}
        status, body = await answer(agent.post(AGENT_MONITORING, json={"windows": [good, wrong]}))
        assert status == 422, body
        named = {f["field"].split(".")[2] for f in body["fields"]}
        assert {"features", "latency", "challengers"} <= named
        assert await rows(hub, "monitoring_windows") == 0
        assert await rows(hub, "monitoring_associations") == 0
        assert (await post(agent, [window(dep["id"], pkg, minute(0))]))[0] == 200
