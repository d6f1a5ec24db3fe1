"""The agent's package cache: a package once fetched is found while the hub is down."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.agent.errors import HubUnreachableError
from pilothouse.agent.hublink.client import HubClient
from pilothouse.agent.hublink.packages import PackageCache
from tests.hub.support import ADMIN, ok, package_bytes, upload
from tests.hub.support import running as hub_running
from tests.hub.support import settings as hub_settings
from tests.process.support import free_port

pytestmark = pytest.mark.anyio


async def test_a_fetched_package_is_found_while_the_hub_is_down(tmp_path: Path) -> None:
    settings = hub_settings(tmp_path / "hub", listen={"port": free_port()})
    async with hub_running(settings) as hub:
        known = await ok(upload(hub.admin, package_bytes("iris", "1.0")), 201)
        never = await ok(upload(hub.admin, package_bytes("iris", "2.0")), 201)
        url = hub.url
        client = HubClient(url, ADMIN)
        cache = PackageCache(client, tmp_path / "cache")
        fetched = await cache.fetch(known["id"])
        assert fetched.sha256 == known["sha256"]
    try:
        again = await cache.fetch(known["id"])
        # A new agent process on the same disk knows it too.
        restarted = await PackageCache(client, tmp_path / "cache").fetch(known["id"])
        with pytest.raises(HubUnreachableError):
            await cache.fetch(never["id"])  # never fetched: only the hub knows it
    finally:
        await client.close()
    assert again == restarted == fetched
    assert again.archive.read_bytes() == package_bytes("iris", "1.0")
