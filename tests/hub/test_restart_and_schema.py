"""A restarted hub keeps everything; the schema is versioned and a newer one is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.agent.errors import PilothouseError
from pilothouse.hub.store.postgres import migrations as postgres_migrations
from pilothouse.hub.store.sqlite import migrations
from tests.hub.support import (
    V1,
    event,
    next_message,
    ok,
    running,
    schema_version,
    set_schema_version,
    settings,
)

pytestmark = pytest.mark.anyio


async def test_everything_survives_a_restart(tmp_path: Path, anyio_backend: str) -> None:
    hub_settings = settings(tmp_path)
    async with running(hub_settings) as hub:
        pe = await hub.pe()
        pkg = await hub.package()
        dep = await hub.deployment(pe["id"], pkg["id"])
        await ok(hub.admin.post(f"{V1}/deployments/{dep['id']}/actions", json={"action": "stop"}))
        token = (
            await ok(hub.admin.post(f"{V1}/prediction-environments/{pe['id']}/agent-tokens"), 201)
        )["token"]
        await ok(
            hub.admin.post(
                f"{V1}/events", json={"events": [event(pe["id"], message="before restart")]}
            )
        )
        before = {
            path: await ok(hub.admin.get(path))
            for path in (
                f"{V1}/prediction-environments/{pe['id']}",
                f"{V1}/deployments/{dep['id']}",
                f"{V1}/model-packages/{pkg['id']}",
                f"{V1}/prediction-environments/{pe['id']}/desired-state",
                f"{V1}/events",
            )
        }  # fmt: skip
    async with running(hub_settings) as hub:
        for path, body in before.items():
            assert await ok(hub.admin.get(path)) == body, path
        agent = hub.session(token)
        await ok(agent.get(f"{V1}/model-packages/{pkg['id']}/archive"))
        found = await ok(hub.admin.get(f"{V1}/events", params={"q": "restart"}))
        assert len(found["items"]) == 1
        async with agent.get(
            f"{V1}/prediction-environments/{pe['id']}/watch", headers={"Last-Event-ID": "1"}
        ) as resp:
            assert (await next_message(resp)).event == "comment"
            assert (await next_message(resp)).id == "2"
        after = await ok(
            hub.admin.post(f"{V1}/deployments/{dep['id']}/actions", json={"action": "launch"})
        )
        assert after["desired"]["generation"] == 3


async def test_schema_version_is_recorded(tmp_path: Path, anyio_backend: str) -> None:
    hub_settings = settings(tmp_path)
    async with running(hub_settings):
        pass
    assert await schema_version(hub_settings) == len(migrations.MIGRATIONS)
    assert len(postgres_migrations.MIGRATIONS) == len(migrations.MIGRATIONS)  # one numbering


async def test_a_newer_schema_is_refused(tmp_path: Path, anyio_backend: str) -> None:
    hub_settings = settings(tmp_path)
    async with running(hub_settings):
        pass
    await set_schema_version(hub_settings, 999)
    with pytest.raises(PilothouseError, match="schema version 999"):
        async with running(hub_settings):
            pass
