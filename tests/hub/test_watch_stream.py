"""The watch stream (SSE): replay after Last-Event-ID, live changes, resync, keep-alive, end."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.hub.support import DEFAULT_SETTINGS, V1, Running, next_message, ok, running, settings

pytestmark = pytest.mark.anyio


async def _world(hub: Running) -> tuple[dict[str, Any], dict[str, Any], aiohttp.ClientSession]:
    pe = await hub.pe()
    pkg = await hub.package()
    return pe, pkg, await hub.agent(pe["id"])


def _watch(agent: aiohttp.ClientSession, pe_id: str, last: str | None = None, **kw: Any) -> Any:
    headers = {"Last-Event-ID": last} if last is not None else {}
    return agent.get(f"{V1}/prediction-environments/{pe_id}/watch", headers=headers, **kw)


async def _skip_comments(resp: aiohttp.ClientResponse) -> Any:
    while (message := await next_message(resp)).event == "comment":
        pass
    return message


async def test_live_changes_arrive_as_they_commit(hub: Running) -> None:
    pe, pkg, agent = await _world(hub)
    async with _watch(agent, pe["id"], "0") as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        assert (await next_message(resp)).data == "connected"
        dep = await hub.deployment(pe["id"], pkg["id"], "fraud")
        created = await _skip_comments(resp)
        assert (created.event, created.id) == ("deployment", "1")
        assert created.json() == {
            "id": dep["id"], "name": "fraud", "model_package_id": pkg["id"], "challenger_ids": [],
            "state": "launched", "generation": 1, "relaunch_token": 0,
            "settings": DEFAULT_SETTINGS, "rollback": None,
        }  # fmt: skip
        await ok(hub.admin.post(f"{V1}/deployments/{dep['id']}/actions", json={"action": "stop"}))
        stopped = await _skip_comments(resp)
        assert (stopped.id, stopped.json()["state"], stopped.json()["generation"]) == (
            "2",
            "stopped",
            2,
        )
        await ok(hub.admin.delete(f"{V1}/deployments/{dep['id']}"), 202)
        removed = await _skip_comments(resp)
        assert (removed.event, removed.id) == ("removed", "3")
        assert removed.json() == {"id": dep["id"], "generation": 3}


async def test_resume_replays_each_deployments_latest_change_after_the_id(hub: Running) -> None:
    pe, pkg, agent = await _world(hub)
    a = await hub.deployment(pe["id"], pkg["id"], "a")  # revision 1
    b = await hub.deployment(pe["id"], pkg["id"], "b")  # revision 2
    for action in ("stop", "launch"):  # revisions 3, 4
        await ok(hub.admin.post(f"{V1}/deployments/{a['id']}/actions", json={"action": action}))
    await ok(hub.admin.delete(f"{V1}/deployments/{b['id']}"), 202)  # revision 5
    snapshot = await ok(agent.get(f"{V1}/prediction-environments/{pe['id']}/desired-state"))
    assert snapshot["revision"] == 5 and [d["id"] for d in snapshot["deployments"]] == [a["id"]]
    async with _watch(agent, pe["id"], "2") as resp:
        first, second = await _skip_comments(resp), await _skip_comments(resp)
    assert (first.id, first.event, first.json()["generation"]) == ("4", "deployment", 3)
    assert (second.id, second.event, second.json()) == (
        "5",
        "removed",
        {"id": b["id"], "generation": 2},
    )
    params = {"last_event_id": "4"}
    async with agent.get(f"{V1}/prediction-environments/{pe['id']}/watch", params=params) as resp:
        only = await _skip_comments(resp)
    assert only.id == "5"


async def test_unknown_or_future_id_gets_a_resync_then_live_changes(hub: Running) -> None:
    pe, pkg, agent = await _world(hub)
    other = await hub.pe("other")
    dep_other = await hub.deployment(other["id"], pkg["id"])  # revision 1 belongs to "other"
    assert dep_other
    for last in ("1", "999", "garbage", "-3"):
        async with _watch(agent, pe["id"], last) as resp:
            message = await _skip_comments(resp)
            assert (message.event, message.data, message.id) == ("resync", "{}", None), last
    async with _watch(agent, pe["id"], "999") as resp:
        assert (await _skip_comments(resp)).event == "resync"
        dep = await hub.deployment(pe["id"], pkg["id"], "mine")
        live = await _skip_comments(resp)
        assert (live.event, live.json()["id"]) == ("deployment", dep["id"])


async def test_keep_alive_comments_on_an_idle_stream(tmp_path: Path, anyio_backend: str) -> None:
    async with running(settings(tmp_path, agents={"keepalive_interval_s": 0.05})) as hub:
        pe, _, agent = await _world(hub)
        async with _watch(agent, pe["id"], "0") as resp:
            assert (await next_message(resp)).data == "connected"
            for _ in range(3):
                assert await next_message(resp, timeout=2) == type(await next_message(resp))(
                    "comment", "keep-alive"
                )


async def test_streams_end_cleanly_when_the_hub_stops(tmp_path: Path, anyio_backend: str) -> None:
    loop = asyncio.get_running_loop()
    tasks_before = asyncio.all_tasks()
    async with aiohttp.ClientSession() as outside:
        async with running(settings(tmp_path)) as hub:
            pe, _, agent = await _world(hub)
            token = agent.headers["Authorization"]
            url = f"{hub.url}{V1}/prediction-environments/{pe['id']}/watch"
            resp = await outside.get(url, headers={"Authorization": token})
            await next_message(resp)
            gauge = await ok(hub.session(None).get("/metrics"))
            assert b"pilothouse_hub_sse_clients 1.0" in gauge
            stopping = loop.time()
        assert loop.time() - stopping < 3  # shutdown did not wait for the stream
        assert asyncio.all_tasks() == tasks_before  # the hub left no task behind
        assert await asyncio.wait_for(resp.content.read(), 5) == b""  # a clean end, not a reset
        resp.release()


async def test_watch_of_unknown_pe_is_404(hub: Running) -> None:
    async with hub.admin.get(f"{V1}/prediction-environments/pe-nope/watch") as resp:
        assert resp.status == 404
