"""Several hub replicas over one PostgreSQL database: one live channel, one background worker.

Two (or three) hubs in this process, each with its own state directory, share
the test's database, the admin token and the secret key: a change made through
one reaches a watch stream held by another, the background work runs on exactly
one of them and moves when it stops, notifications are sent once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

from pilothouse.hub.clock import now_us
from pilothouse.hub.settings import HubSettings
from tests.hub.receivers import LOCAL_TARGETS, receiving
from tests.hub.support import (
    ADMIN,
    V1,
    Running,
    event,
    next_message,
    ok,
    query,
    running,
    settings,
)

pytestmark = [pytest.mark.anyio, pytest.mark.backends("postgres")]

SECRET_KEY = "replicas-share-this-secret-key-0123456789"
FAST_LEASE = {"lease_poll_s": 0.1, "lease_timeout_s": 1.0}
MOVE_WITHIN_S = 5.0


def replica(tmp_path: Path, name: str, **overrides: Any) -> HubSettings:
    """Settings of one replica: its own state directory, the shared database and keys."""
    return settings(
        tmp_path / name, **({"secret_key": SECRET_KEY, "database": FAST_LEASE} | overrides)
    )


async def holds_lease(hub: Running) -> bool:
    """Whether ``hub`` says (``/metrics``) that it runs the background work."""
    text = (await ok(hub.session(None).get("/metrics"))).decode()
    return "pilothouse_hub_lease_held 1.0" in text


async def holder(*hubs: Running, timeout: float = MOVE_WITHIN_S) -> Running:
    """The one replica holding the lease, once exactly one does."""
    async with asyncio.timeout(timeout):
        while True:
            held = [hub for hub in hubs if await holds_lease(hub)]
            if len(held) == 1:
                return held[0]
            assert len(held) < 2, "two replicas hold the lease"
            await asyncio.sleep(0.02)


async def test_a_change_through_one_replica_reaches_a_stream_on_another(tmp_path: Path) -> None:
    async with running(replica(tmp_path, "a")) as a, running(replica(tmp_path, "b")) as b:
        pe = await a.pe()
        pkg = await a.package()
        agent = await b.agent(pe["id"])
        latencies = []
        async with agent.get(f"{V1}/prediction-environments/{pe['id']}/watch") as resp:
            assert (await next_message(resp)).event == "comment"
            for i in range(5):
                began = time.monotonic()
                dep = await a.deployment(pe["id"], pkg["id"], name=f"dep{i}")
                message = await next_message(resp)
                latencies.append(time.monotonic() - began)
                assert (message.event, message.json()["id"]) == ("deployment", dep["id"])
    print(f"change via replica A -> stream on replica B: max {max(latencies) * 1000:.1f} ms")
    assert max(latencies) < 1.0


async def test_a_stream_replays_what_it_missed_while_its_replica_was_deaf(tmp_path: Path) -> None:
    async with running(replica(tmp_path, "a")) as a, running(replica(tmp_path, "b")) as b:
        pe = await a.pe()
        pkg = await a.package()
        agent = await b.agent(pe["id"])
        async with agent.get(f"{V1}/prediction-environments/{pe['id']}/watch") as resp:
            assert (await next_message(resp)).event == "comment"
            before = await _listeners(a.settings)
            # every replica's live channel drops; the changes commit while they reconnect
            await query(a.settings, _TERMINATE_LISTENERS)
            deps = [await a.deployment(pe["id"], pkg["id"], name=f"d{i}") for i in range(3)]
            seen = {(await next_message(resp)).json()["id"] for _ in deps}
            assert seen == {dep["id"] for dep in deps}
            after = await _listeners(a.settings)
    assert len(before) == 2 and len(after) == 2 and not set(before) & set(after)


_TERMINATE_LISTENERS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE application_name = 'pilothouse-hub listener'"
)


async def _listeners(hub_settings: HubSettings) -> list[int]:
    async with asyncio.timeout(5):
        while True:
            found = await query(
                hub_settings,
                "SELECT pid FROM pg_stat_activity WHERE application_name = "
                "'pilothouse-hub listener' AND state = 'idle'",
            )
            if len(found) == 2:
                return [row[0] for row in found]
            await asyncio.sleep(0.05)


async def test_the_background_work_runs_on_one_replica_and_moves_when_it_stops(
    tmp_path: Path,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        hubs = {}
        for name in ("a", "b", "c"):
            hubs[name] = await stack.enter_async_context(running(replica(tmp_path, name)))
        first = await holder(*hubs.values())
        for _ in range(10):  # and it stays with one
            assert await holder(*hubs.values()) is first
        locks = await query(
            first.settings,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objid = 1650551655",
        )
        assert locks == [(1,)]
        name = next(n for n, hub in hubs.items() if hub is first)
        stopped_at = time.monotonic()
        await _stop(stack, hubs, name)
        second = await holder(*hubs.values())
        moved_s = time.monotonic() - stopped_at
    print(f"the lease moved to another replica in {moved_s:.2f} s")
    assert second is not first and moved_s < MOVE_WITHIN_S


async def _stop(stack: contextlib.AsyncExitStack, hubs: dict[str, Running], name: str) -> None:
    """Stop replica ``name`` now, keeping the others (rebuilds the exit stack's order)."""
    rest = {n: h for n, h in hubs.items() if n != name}
    await stack.aclose()
    hubs.clear()
    for other in rest:
        hubs[other] = await stack.enter_async_context(running(rest[other].settings))


async def test_notifications_are_sent_once_and_resume_on_the_next_holder(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"  # as mounted into every replica; nothing in the settings
    secrets.mkdir()
    (secrets / "admin-token").write_text(ADMIN + "\n")
    (secrets / "secret-key").write_text(SECRET_KEY)
    notify = {
        "notifications": LOCAL_TARGETS,
        "admin_token": None,
        "admin_token_file": secrets / "admin-token",
        "secret_key": None,
        "secret_key_file": secrets / "secret-key",
    }
    async with receiving() as receiver, contextlib.AsyncExitStack() as stack:
        hubs = {
            name: await stack.enter_async_context(running(replica(tmp_path, name, **notify)))
            for name in ("a", "b")
        }
        a = hubs["a"]
        pe = await a.pe()
        body = {"name": "hook", "type": "webhook", "url": receiver.url}
        channel = await ok(a.admin.post(f"{V1}/notification-channels", json=body), 201)
        rule = {"name": "p", "channel_id": channel["id"], "statuses": ["failing"]}
        await ok(
            a.admin.post(f"{V1}/notification-policies", json=rule | {"group_window_s": 0}), 201
        )
        for i, hub in enumerate(hubs.values()):  # through each replica
            failing = event(pe["id"], deployment_id=f"d{i}", status="failing", message=f"m{i}")
            await ok(hub.admin.post(f"{V1}/events", json={"events": [failing]}))
        await receiver.wait_for(2)
        await asyncio.sleep(0.5)
        assert len(receiver.requests) == 2  # once each, though two replicas could send
        first = await holder(*hubs.values())
        await _stop(stack, hubs, next(n for n, h in hubs.items() if h is first))
        (survivor,) = hubs.values()
        await holder(survivor)
        late = event(pe["id"], deployment_id="d9", status="failing", message="after")
        await ok(survivor.admin.post(f"{V1}/events", json={"events": [late]}))
        await receiver.wait_for(3)
    sent = [r.json()["events"][0]["message"] for r in receiver.requests]
    assert sorted(sent) == ["after", "m0", "m1"]


async def test_messages_claimed_by_a_former_holder_are_sent_at_once(tmp_path: Path) -> None:
    notify = {"notifications": LOCAL_TARGETS}
    async with receiving() as receiver:
        async with running(replica(tmp_path, "a", **notify)) as a:
            body = {"name": "hook", "type": "webhook", "url": receiver.url}
            channel = await ok(a.admin.post(f"{V1}/notification-channels", json=body), 201)
            test = f"{V1}/notification-channels/{channel['id']}/test"
            await ok(a.admin.post(test), 200)
            await receiver.wait_for(1)
        # A replica that died mid-send left this message claimed for an hour.
        in_an_hour = now_us() + 3600 * 1_000_000
        await query(
            a.settings,
            f"UPDATE notification_deliveries SET state = 'pending', attempts = 0, "
            f"max_attempts = 3, claimed_by = 'a-dead-replica', next_attempt_at = {in_an_hour}",
        )
        began = time.monotonic()
        async with running(replica(tmp_path, "b", **notify)):
            await receiver.wait_for(2, timeout=MOVE_WITHIN_S)
        print(
            f"a message claimed by a dead replica was sent again {time.monotonic() - began:.2f} s"
        )
