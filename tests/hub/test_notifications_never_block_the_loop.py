"""Export, notifications and retention under blockbuster: no blocking call on the event loop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from blockbuster import blockbuster_ctx

from pilothouse.hub.clock import ManualClock
from tests.hub.receivers import LOCAL_TARGETS, receiving
from tests.hub.support import V1, event, ok, running, settings

pytestmark = pytest.mark.anyio


async def test_export_notify_and_purge_never_block(tmp_path: Path, anyio_backend: str) -> None:
    clock = ManualClock(datetime.now(UTC))
    hub_settings = settings(
        tmp_path, secret_key=None, notifications={"hub_url": "http://h", **LOCAL_TARGETS}
    )
    async with receiving() as receiver:
        with blockbuster_ctx(["hub"]):
            async with running(hub_settings, clock) as hub:
                pe = await hub.pe()
                body = {"name": "w", "type": "webhook", "url": receiver.url}
                channel = await ok(hub.admin.post(f"{V1}/notification-channels", json=body), 201)
                await ok(hub.admin.post(f"{V1}/notification-channels/{channel['id']}/test"))
                policy = {"name": "p", "channel_id": channel["id"], "group_window_s": 0}
                await ok(hub.admin.post(f"{V1}/notification-policies", json=policy), 201)
                old = clock.now() - timedelta(days=200)
                batch = [event(pe["id"], time=old, deployment_id="d", status="failing")]
                batch += [
                    event(pe["id"], time=clock.now(), deployment_id="d", status="failing")
                    for _ in range(3)
                ]
                await ok(hub.admin.post(f"{V1}/events", json={"events": batch}))
                await receiver.wait_for(2)
                for fmt in ("csv", "jsonl"):
                    await ok(hub.admin.get(f"{V1}/events/export", params={"format": fmt}))
                await ok(hub.admin.put(f"{V1}/settings/retention", json={"days": 90}))
                for _ in range(200):
                    state = await ok(hub.admin.get(f"{V1}/settings/retention"))
                    if state["last_purge_removed"] is not None:
                        break
                    await asyncio.sleep(0.02)
                assert state["last_purge_removed"] == 1
                await ok(hub.admin.get(f"{V1}/notification-deliveries"))
