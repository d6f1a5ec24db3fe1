"""Notification channels do not reach into the hub's own network, nor echo what they find there.

Issue 9, item 9: webhook URLs could target loopback and private addresses, and
the channel test copied the receiver's answer into ``last_error``, so an admin
could read internal services through the delivery log. Such URLs are now
refused (403 naming ``url``) unless ``notifications.allow_private_targets`` is
set; a host *name* that resolves inside is refused when it is resolved for a
send; and a failed attempt records the status code and reason only.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.hub.receivers import LOCAL_TARGETS, receiving
from tests.hub.support import V1, Running, answer, ok, running, settings

pytestmark = pytest.mark.anyio

NCH = f"{V1}/notification-channels"
INTERNAL = [
    "http://127.0.0.1:8700/hook",
    "http://127.8.9.10/hook",
    "http://10.1.2.3/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/hook",
    "http://0.0.0.0:8700/hook",
    "http://[::1]:8700/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fd00::1]/hook",
    "http://[fe80::1]/hook",
    "http://localhost:8700/hook",
    "http://LOCALHOST./hook",
    "http://api.localhost/hook",
]


@pytest.mark.parametrize("url", INTERNAL)
async def test_internal_urls_are_refused_by_default(hub: Running, url: str) -> None:
    status, body = await answer(
        hub.admin.post(NCH, json={"name": "c", "type": "webhook", "url": url})
    )
    assert status == 403, body
    assert body["fields"][0]["field"] == "url"
    assert "allow_private_targets" in body["message"]
    assert (await ok(hub.admin.get(NCH)))["items"] == []


async def test_changing_a_url_to_an_internal_one_is_refused(hub: Running) -> None:
    body = {"name": "c", "type": "webhook", "url": "https://hooks.example/a"}
    channel = await ok(hub.admin.post(NCH, json=body), 201)
    status, answer_body = await answer(
        hub.admin.patch(f"{NCH}/{channel['id']}", json={"url": "http://10.0.0.1/x"})
    )
    assert status == 403 and answer_body["fields"][0]["field"] == "url"
    assert (await ok(hub.admin.get(f"{NCH}/{channel['id']}")))["url"] == channel["url"]


async def test_a_name_resolving_inside_is_not_connected_to(anyio_backend: str) -> None:
    """The send-time guard: the session's resolver drops internal addresses of any name.

    ``localhost`` stands here for any name that resolves inside (the API refuses
    ``localhost`` itself by name, but not a name an attacker points at 10.0.0.5).
    """
    from pilothouse.hub.service import targets

    async with receiving() as receiver:
        url = receiver.url.replace("127.0.0.1", "localhost")
        async with targets.session(allow_private=False, proxy_url=None) as guarded:
            with pytest.raises(aiohttp.ClientConnectorError, match="internal addresses"):
                await guarded.post(url, data=b"{}")
        assert receiver.requests == []  # refused before connecting: nothing can be on its way
        async with (
            targets.session(allow_private=True, proxy_url=None) as allowed,
            allowed.post(url, data=b"{}") as resp,
        ):
            assert resp.status == 200
        assert len(await receiver.wait_for(1)) == 1


@pytest.fixture
async def local_hub(tmp_path: Path, anyio_backend: str) -> AsyncIterator[Running]:
    async with running(settings(tmp_path / "hub", notifications=LOCAL_TARGETS)) as serving:
        yield serving


async def test_the_setting_allows_internal_targets(local_hub: Running) -> None:
    async with receiving() as receiver:
        body = {"name": "c", "type": "webhook", "url": receiver.url}
        channel = await ok(local_hub.admin.post(NCH, json=body), 201)
        delivery = await ok(local_hub.admin.post(f"{NCH}/{channel['id']}/test"))
        assert delivery["state"] == "delivered", delivery
        assert len(await receiver.wait_for(1)) == 1


async def test_a_failed_attempt_records_status_and_reason_never_the_body(
    local_hub: Running,
) -> None:
    secret = "db_password=hunter2 internal-admin-page"

    async def inside(request: web.Request) -> web.Response:
        return web.Response(status=503, reason="Service Unavailable", text=secret)

    async with _server(inside) as url:
        body = {"name": "c", "type": "webhook", "url": f"{url}/hook"}
        channel = await ok(local_hub.admin.post(NCH, json=body), 201)
        delivery = await ok(local_hub.admin.post(f"{NCH}/{channel['id']}/test"))
    assert delivery["state"] == "failed"
    assert delivery["last_error"] == "the receiver answered 503 Service Unavailable"
    assert delivery["attempt_log"][0]["error"] == delivery["last_error"]
    assert delivery["attempt_log"][0]["http_status"] == 503
    listed = await ok(local_hub.admin.get(f"{V1}/notification-deliveries"))
    assert "hunter2" not in str(listed)


@contextlib.asynccontextmanager
async def _server(handler: Any) -> AsyncIterator[str]:
    """A one-handler HTTP server on 127.0.0.1 for the block; yields its base URL."""
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
