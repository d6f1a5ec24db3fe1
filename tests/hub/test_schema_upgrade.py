"""A database made by the previous hub version is upgraded in place; nothing old is notified."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pilothouse.hub.clock import SystemClock
from pilothouse.hub.settings import HubSettings
from pilothouse.hub.store.postgres import migrations as postgres_migrations
from pilothouse.hub.store.sqlite import migrations
from tests.hub.quiet import WatchedClock
from tests.hub.receivers import LOCAL_TARGETS, receiving
from tests.hub.support import V1, event, ok, query, running, settings

pytestmark = pytest.mark.anyio


async def test_upgrade_from_version_1_keeps_events_and_notifies_only_new_ones(
    tmp_path: Path, anyio_backend: str
) -> None:
    hub_settings = settings(tmp_path, notifications=LOCAL_TARGETS)
    async with running(hub_settings) as hub:
        pe = await hub.pe()
        old = [event(pe["id"], deployment_id="d", status="failing") for _ in range(5)]
        await ok(hub.admin.post(f"{V1}/events", json={"events": old}))
    await _downgrade_to_version_1(hub_settings)
    clock = WatchedClock(SystemClock())
    async with running(hub_settings, clock) as hub, receiving() as receiver:
        listed = await ok(hub.admin.get(f"{V1}/events"))
        assert {e["id"] for e in listed["items"]} == {e["id"] for e in old}
        body = {"name": "w", "type": "webhook", "url": receiver.url}
        channel = await ok(hub.admin.post(f"{V1}/notification-channels", json=body), 201)
        policy = {"name": "p", "channel_id": channel["id"], "group_window_s": 0}
        await ok(hub.admin.post(f"{V1}/notification-policies", json=policy), 201)
        new = event(pe["id"], deployment_id="d", status="failing")
        await ok(hub.admin.post(f"{V1}/events", json={"events": [new]}))
        (request,) = await receiver.wait_for(1)
        await receiver.nothing_more(1, clock)
    assert [e["id"] for e in orjson.loads(request.body)["events"]] == [new["id"]]


async def _downgrade_to_version_1(hub_settings: HubSettings) -> None:
    """Drop what migrations 7 to 2 added, as if the hub before them had made this database."""
    assert len(migrations.MIGRATIONS) == len(postgres_migrations.MIGRATIONS) == 7
    statements = [
        "ALTER TABLE agent_tokens DROP COLUMN kind",
        "ALTER TABLE deployments DROP COLUMN observed_grpc_target",
        "DROP INDEX agent_tokens_by_pe",
        "ALTER TABLE agent_tokens DROP COLUMN revoked_at",
        "ALTER TABLE health_sources DROP COLUMN seq",
        *(f"DROP TABLE {table}" for table in _VERSION_2_TABLES),
        "UPDATE schema_version SET version = 1"
        if hub_settings.uses_postgres
        else "PRAGMA user_version = 1",
    ]
    for statement in statements:
        await query(hub_settings, statement)


_VERSION_2_TABLES = (
    "monitoring_windows",
    "monitoring_hourly",
    "monitoring_associations",
    "monitoring_state",
    "management_paused",
    "notification_attempts",
    "notification_deliveries",
    "notification_pending",
    "notification_groups",
    "notification_policies",
    "notification_channels",
    "hub_state",
)
