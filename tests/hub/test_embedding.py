"""Embedding: `Hub(settings).serve()` in a task, `wait_ready`, `request_stop`; start failures."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest

from pilothouse.hub import Hub, HubError
from tests.hub.support import settings

pytestmark = pytest.mark.anyio


async def test_serve_until_asked_to_stop(tmp_path: Path, anyio_backend: str) -> None:
    hub = Hub(settings(tmp_path))
    task = asyncio.create_task(hub.serve())
    url = await asyncio.wait_for(hub.wait_ready(), 10)
    assert not url.endswith(":0")
    async with aiohttp.ClientSession() as http, http.get(url + "/readyz") as resp:
        assert resp.status == 200
    hub.request_stop()
    await asyncio.wait_for(task, 10)


async def test_a_taken_port_fails_the_start_instead_of_hanging(
    tmp_path: Path, anyio_backend: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        hub = Hub(settings(tmp_path, listen={"port": port}))
        task = asyncio.create_task(hub.serve())
        with pytest.raises(HubError, match="did not start"):
            await asyncio.wait_for(hub.wait_ready(), 10)
        with pytest.raises(OSError):
            await task
