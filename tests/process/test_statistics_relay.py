"""Statistics windows from real prediction servers to a hub endpoint, through a durable store.

The process plugin runs a real ``pilothouse serve``; the relay reads it, cuts
windows and stores them; the shipper posts them to ``POST
/api/v1/agent/monitoring``. The hub's side of that endpoint is built
elsewhere (issue 14, hub developer): here a minimal aiohttp server on
127.0.0.1 stands in for it, validating each body as a ``StatsBatch`` and
ingesting idempotently by window id, exactly as the contract says.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import ValidationError

from pilothouse.agent import DesiredDeployment
from pilothouse.agent.hublink.client import HubClient
from pilothouse.agent.monitoring.relay import StatisticsRelay
from pilothouse.agent.monitoring.shipping import NoticeSender, WindowShipper
from pilothouse.agent.monitoring.store import MonitoringStore
from pilothouse.agent.plugin import PluginContext
from pilothouse.agent.settings import MonitoringSettings
from pilothouse.foundation.aio import tasks
from pilothouse.foundation.domain.monitoring import StatsBatch, StatsWindow
from pilothouse.plugins.process import ProcessPlugin
from tests.process.support import ROWS, RULES, free_port, predict, reaped, until

pytestmark = pytest.mark.anyio

TOKEN = "agent-token-for-pe"
log = logging.getLogger("test.relay")


class HubStandIn:
    """``POST /api/v1/agent/monitoring`` and ``/deployments/{id}/rollback`` per the contract."""

    def __init__(self, deployments: set[str], refuse_rollback: int | None = None) -> None:
        self.deployments = deployments
        self.windows: dict[str, StatsWindow] = {}
        self.posts = 0
        self.duplicates = 0
        self.rollbacks: list[tuple[str, dict[str, Any]]] = []
        self.refuse_rollback = refuse_rollback

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v1/agent/monitoring", self.monitoring)
        app.router.add_post("/api/v1/deployments/{id}/rollback", self.rollback)
        return app

    async def monitoring(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"message": "agent token required"}, status=401)
        self.posts += 1
        try:
            batch = StatsBatch.model_validate_json(await request.read())
        except ValidationError as exc:
            return web.json_response({"message": str(exc)}, status=422)
        for window in batch.windows:
            if window.deployment_id not in self.deployments:
                message = f"deployment {window.deployment_id!r} is not in this agent's PE"
                return web.json_response({"message": message}, status=403)
        accepted = 0
        for window in batch.windows:
            if window.id in self.windows:
                self.duplicates += 1
            else:
                self.windows[window.id] = window
                accepted += 1
        return web.json_response(
            {"accepted": accepted, "duplicates": len(batch.windows) - accepted}
        )

    async def rollback(self, request: web.Request) -> web.Response:
        if self.refuse_rollback is not None:
            return web.json_response({"message": "champion changed"}, status=self.refuse_rollback)
        self.rollbacks.append((request.match_info["id"], await request.json()))
        return web.json_response({"recorded": True})


@contextlib.asynccontextmanager
async def serving(hub: HubStandIn, port: int) -> AsyncIterator[None]:
    runner = web.AppRunner(hub.app(), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def plugin_serving(tmp: Path, events: list[Any]) -> AsyncIterator[ProcessPlugin]:
    ctx = PluginContext(
        prediction_environment_id="pe", settings={"packages": {"rules": RULES},
                                                  "stop_servers_on_unload": True},
        state_dir=tmp / "plugin", emit=events.append, logger=log,
    )  # fmt: skip
    plugin = ProcessPlugin()
    async with reaped(tmp):
        await plugin.start(ctx)
        try:
            yield plugin
        finally:
            await plugin.stop()
            await ctx.stop_tasks()


async def test_windows_made_while_the_hub_is_down_arrive_afterwards_once(tmp_path: Path) -> None:
    events: list[Any] = []
    hub = HubStandIn({"iris"})
    port = free_port()
    settings = MonitoringSettings(interval_s=3600)
    sent = 0
    async with plugin_serving(tmp_path, events) as plugin, aiohttp.ClientSession() as http:
        result = await plugin.launch(DesiredDeployment(id="iris", model_package_id="rules"))
        assert result.prediction_url is not None
        store = MonitoringStore(tmp_path / "monitoring.db", settings.store_max_bytes)
        relay = StatisticsRelay(plugin, lambda: ["iris"], settings, store)
        relay.load((await store.open()).cursors)
        client = HubClient(f"http://127.0.0.1:{port}", TOKEN)
        reports: list[tuple[Any, ...]] = []
        shipper = WindowShipper(store, client, 2, 0.2, lambda *a, **k: reports.append(a))
        shipping = tasks.watched(shipper.run(lambda: None), "statistics shipper", log)
        try:
            for rounds in (3, 5, 0, 4):  # requests between readings; a quiet one makes none
                for _ in range(rounds):
                    assert (await predict(http, result.prediction_url, ROWS))[0] == 200
                sent += rounds
                await relay.relay_all()
            assert relay.windows_made == 3 and store.size_bytes > 0
            await asyncio.sleep(0.5)  # the shipper is retrying against nothing
            assert hub.posts == 0
            # The agent restarts while the hub is still down: the next window starts
            # where the stored ones end (the cursor was stored with them).
            await tasks.cancel_and_wait(shipping)
            await store.close()
            store = MonitoringStore(tmp_path / "monitoring.db", settings.store_max_bytes)
            relay = StatisticsRelay(plugin, lambda: ["iris"], settings, store)
            relay.load((await store.open()).cursors)
            for _ in range(2):
                await predict(http, result.prediction_url, ROWS)
            sent += 2
            await relay.relay_all()
            shipper = WindowShipper(store, client, 2, 0.2, lambda *a, **k: reports.append(a))
            shipping = tasks.watched(shipper.run(lambda: None), "statistics shipper", log)
            async with serving(hub, port):
                await until(lambda: len(hub.windows) == 4, what="every window at the hub")
                await until(lambda: store.size_bytes == 0, what="the store emptied")
        finally:
            await tasks.cancel_and_wait(shipping)
            await store.close()
            await client.close()
    windows = sorted(hub.windows.values(), key=lambda w: w.start)
    # The first window also holds the launch's probe: a real prediction on the samples.
    assert [w.requests for w in windows] == [3 + 1, 5, 4, 2]
    assert sum(w.rows for w in windows[1:]) == (sent - 3) * len(ROWS)
    assert hub.duplicates == 0 and reports == []
    assert all(a.end <= b.start for a, b in itertools.pairwise(windows))
    assert all(w.package_id == "rules" and w.deployment_id == "iris" for w in windows)
    assert sum(len(w.associations) for w in windows) == sent + 1, "one per request"
    petal = windows[1].features["petal_length"]
    assert petal.count == 5 * len(ROWS) and petal.distribution is not None


async def test_a_refused_batch_is_dropped_and_reported_and_the_rest_still_arrives(
    tmp_path: Path,
) -> None:
    events: list[Any] = []
    hub = HubStandIn({"iris"})  # "other" is not this agent's: 403 naming it
    port = free_port()
    settings = MonitoringSettings()
    async with plugin_serving(tmp_path, events) as plugin, aiohttp.ClientSession() as http:
        for dep in ("other", "iris"):
            result = await plugin.launch(DesiredDeployment(id=dep, model_package_id="rules"))
            assert result.prediction_url is not None
            await predict(http, result.prediction_url, ROWS)
        store = MonitoringStore(tmp_path / "monitoring.db", settings.store_max_bytes)
        await store.open()
        relay = StatisticsRelay(plugin, lambda: ["other", "iris"], settings, store)
        client = HubClient(f"http://127.0.0.1:{port}", TOKEN)
        for dep in ("other", "iris"):  # one batch each (a batch of one window)
            await relay.relay(dep)
        reports: list[tuple[Any, ...]] = []
        shipper = WindowShipper(store, client, 1, 0.2, lambda *a, **k: reports.append(a))
        try:
            async with serving(hub, port):
                assert await shipper.ship_once() and await shipper.ship_once()
                assert not await shipper.ship_once()
        finally:
            await store.close()
            await client.close()
    assert [w.deployment_id for w in hub.windows.values()] == ["iris"]
    assert shipper.refused == 1 and shipper.accepted == 1
    ((type_, status, message),) = reports
    assert (
        type_ == "agent.statistics_refused" and "'other'" in message and status.value == "at_risk"
    )


async def test_rollback_notices_wait_for_the_hub_and_are_delivered_once(tmp_path: Path) -> None:
    hub = HubStandIn(set())
    port = free_port()
    store = MonitoringStore(tmp_path / "monitoring.db", 1024 * 1024)
    await store.open()
    client = HubClient(f"http://127.0.0.1:{port}", TOKEN)
    reports: list[tuple[Any, ...]] = []
    sender = NoticeSender(store, client, 0.2, lambda *a, **k: reports.append(a))
    body = b'{"from_package_id":"B","to_package_id":"A","reason":"errors","figures":{}}'
    try:
        await store.add_notice("iris", body)
        sending = tasks.watched(sender.run(lambda: None), "rollback notices", log)
        await asyncio.sleep(0.5)
        assert hub.rollbacks == []
        async with serving(hub, port):
            await until(lambda: len(hub.rollbacks) == 1, what="the notice at the hub")
            await asyncio.sleep(0.3)
        await tasks.cancel_and_wait(sending)
        assert await store.notices() == [] and sender.delivered == 1
        assert hub.rollbacks == [("iris", {"from_package_id": "B", "to_package_id": "A",
                                           "reason": "errors", "figures": {}})]  # fmt: skip
        hub.refuse_rollback = 409
        await store.add_notice("iris", body)
        async with serving(hub, port):
            assert await sender.send_all()
        assert await store.notices() == []
        assert [r[0] for r in reports] == ["deployment.rollback_superseded"]
    finally:
        await store.close()
        await client.close()
