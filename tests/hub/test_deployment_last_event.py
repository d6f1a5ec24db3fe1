"""Each deployment carries the time of its latest event, and who decided its service health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.hub.support import V1, Running, at, event, ok

pytestmark = pytest.mark.anyio


async def test_last_event_time_and_deciding_source(hub: Running) -> None:
    pe = await hub.pe()
    pkg = await hub.package()
    dep = await hub.deployment(pe["id"], pkg["id"], "fraud")
    created = await ok(hub.admin.get(f"{V1}/events", params={"deployment_id": dep["id"]}))
    assert dep["last_event_at"] == created["items"][0]["time"]
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)  # within any skew
    late = event(pe["id"], deployment_id=dep["id"], status="failing", source="monitor",
                 time=ahead, message="drift")  # fmt: skip
    stamp = ahead.isoformat().replace("+00:00", "Z")
    older = event(pe["id"], deployment_id=dep["id"], status="passing", time=at(0))
    await ok(hub.admin.post(f"{V1}/events", json={"events": [late, older]}))
    listed = await ok(hub.admin.get(f"{V1}/deployments"))
    (found,) = listed["items"]
    assert found["last_event_at"] == stamp
    assert found["service_health"] == {
        "status": "failing", "reason": "drift", "event_id": late["id"], "source": "monitor",
    }  # fmt: skip
    acted = await ok(hub.admin.post(f"{V1}/deployments/{dep['id']}/actions",
                                    json={"action": "relaunch"}))  # fmt: skip
    assert acted["last_event_at"] == stamp  # the newest, not the action's
