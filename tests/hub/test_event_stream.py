"""``GET /events/stream``: a first page, then each new matching event, resumable, admin only."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.hub.support import (
    V1,
    Running,
    at,
    event,
    next_message,
    ok,
    running,
    settings,
    until_settled,
)

pytestmark = pytest.mark.anyio


async def _post(hub: Running, *events: dict[str, Any]) -> None:
    await ok(hub.admin.post(f"{V1}/events", json={"events": list(events)}))


async def test_a_snapshot_then_each_new_matching_event_in_order(hub: Running) -> None:
    pe = await hub.pe()
    old = [event(pe["id"], deployment_id="d1", time=at(i), message=f"old {i}") for i in range(5)]
    await _post(hub, *old, event(pe["id"], deployment_id="d2", time=at(9)))
    params = {"deployment_id": "d1", "backlog": "3"}
    await until_settled(hub, params, [e["id"] for e in old[:1:-1]])
    async with hub.admin.get(f"{V1}/events/stream", params=params) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        assert (await next_message(stream)).event == "comment"  # connected
        first = await next_message(stream)
        assert first.event == "snapshot"
        page = first.json()
        assert [e["message"] for e in page["items"]] == ["old 4", "old 3", "old 2"]
        assert page["next_cursor"]  # older ones are a GET /events away
        older = await ok(hub.admin.get(f"{V1}/events", params={
            "deployment_id": "d1", "cursor": page["next_cursor"]}))  # fmt: skip
        assert [e["message"] for e in older["items"]] == ["old 1", "old 0"]

        other = event(pe["id"], deployment_id="d2", time=at(20))
        new = [
            event(pe["id"], deployment_id="d1", time=at(20 + i), status="failing") for i in range(3)
        ]
        await _post(hub, other, *new)
        got = [await next_message(stream, timeout=2) for _ in new]
        assert [m.event for m in got] == ["event"] * 3
        assert [m.json()["id"] for m in got] == [e["id"] for e in new]
        assert [int(m.id or 0) for m in got] == sorted(int(m.id or 0) for m in got)
        assert int(got[0].id or 0) > int(first.id or 0)


async def test_resuming_sends_only_what_was_stored_since(hub: Running) -> None:
    pe = await hub.pe()
    async with hub.admin.get(f"{V1}/events/stream") as stream:
        await next_message(stream)
        snapshot = await next_message(stream)
        assert snapshot.json() == {"items": [], "next_cursor": None}
        seen = event(pe["id"], time=at(1))
        await _post(hub, seen)
        position = (await next_message(stream)).id
    missed = [event(pe["id"], time=at(2 + i)) for i in range(2)]
    await _post(hub, *missed)
    headers = {"Last-Event-ID": str(position)}
    async with hub.admin.get(f"{V1}/events/stream", headers=headers) as stream:
        await next_message(stream)
        got = [(await next_message(stream)).json()["id"] for _ in missed]
    assert got == [e["id"] for e in missed]


async def test_filters_and_search_apply_to_live_events(hub: Running) -> None:
    pe = await hub.pe()
    params = {"status": "failing", "q": "disk", "source": "agent"}
    async with hub.admin.get(f"{V1}/events/stream", params=params) as stream:
        await next_message(stream)
        await next_message(stream)
        wanted = event(pe["id"], status="failing", message="disk full on node 3")
        await _post(
            hub,
            event(pe["id"], status="passing", message="disk fine"),
            event(pe["id"], status="failing", message="memory"),
            event(pe["id"], status="failing", message="disk", source="monitor"),
            wanted,
        )
        assert (await next_message(stream, timeout=2)).json()["id"] == wanted["id"]


async def test_only_the_admin_may_listen_and_bad_filters_are_named(hub: Running) -> None:
    pe = await hub.pe()
    agent = await hub.agent(pe["id"])
    async with agent.get(f"{V1}/events/stream") as refused:
        assert refused.status == 403
    async with hub.session(None).get(f"{V1}/events/stream") as anonymous:
        assert anonymous.status == 401
    async with hub.admin.get(f"{V1}/events/stream", params={"backlog": "5000"}) as bad:
        assert bad.status == 422
        assert (await bad.json())["fields"][0]["field"] == "backlog"


async def test_a_burst_larger_than_one_read_arrives_whole_and_streams_end_at_shutdown(
    tmp_path: Any, anyio_backend: str
) -> None:
    async with running(settings(tmp_path)) as hub:
        pe = await hub.pe()
        stream = await hub.admin.get(f"{V1}/events/stream")
        await next_message(stream)
        await next_message(stream)
        burst = [event(pe["id"], time=at(i)) for i in range(1200)]  # > tailing.SCAN
        await _post(hub, *burst)
        got = [(await next_message(stream, timeout=5)).json()["id"] for _ in burst]
        assert got == [e["id"] for e in burst]
    # The hub stopped: the stream ended instead of hanging.
    async with asyncio.timeout(5):
        # aiohttp's client says "Connection closed" when the server ends a chunked stream.
        with pytest.raises((EOFError, RuntimeError), match=r"ended|Connection closed"):
            while True:
                await next_message(stream)
    stream.close()
