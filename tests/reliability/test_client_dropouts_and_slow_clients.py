"""Clients that leave mid-request, idle, or send half a request: no false alarm, no held handler.

Issue 9, item 9: a client dropping out mid-upload was logged at ERROR with a
traceback and counted as a 500 in ``pilothouse_hub_requests_total`` (false
alerts), and the hub's HTTP server never closed idle or half-sent connections.
Now a dropped client is logged at INFO and counted as 499; an idle connection,
or one whose request headers never complete, is closed after
``http.keepalive_timeout_s``; a body that stops arriving is answered 408 after
``http.read_timeout_s``. Raw sockets on 127.0.0.1 play the misbehaving clients.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.hub.support import ADMIN, V1, Running, ok, package_bytes, running, settings

pytestmark = pytest.mark.anyio

TIMEOUT_S = 0.5


@pytest.fixture
async def strict_hub(tmp_path: Path, anyio_backend: str) -> AsyncIterator[Running]:
    timeouts = {"keepalive_timeout_s": TIMEOUT_S, "read_timeout_s": TIMEOUT_S}
    async with running(settings(tmp_path / "hub", http=timeouts)) as hub:
        yield hub


async def _connect(hub: Running) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = hub.url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


def _head(method: str, path: str, content_type: str, length: int) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {ADMIN}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def _counted(hub: Running, route: str) -> dict[str, float]:
    text = (await ok(hub.session(None).get("/metrics"))).decode()
    counts = {}
    for line in text.splitlines():
        if line.startswith("pilothouse_hub_requests_total{") and f'route="{route}"' in line:
            status = line.split('status="')[1].split('"')[0]
            counts[status] = float(line.rsplit(" ", 1)[1])
    return counts


async def _wait_for_count(hub: Running, route: str, status: str) -> dict[str, float]:
    """The route's counts once ``status`` is among them (the handler ends after the client left)."""
    for _ in range(250):
        counts = await _counted(hub, route)
        if status in counts:
            return counts
        await asyncio.sleep(0.02)
    raise AssertionError(f"{route} never counted {status}: {counts}")


@pytest.mark.parametrize(
    ("path", "content_type", "partial"),
    [
        (f"{V1}/model-packages", "application/gzip", package_bytes()[:200]),
        (f"{V1}/prediction-environments", "application/json", b'{"name": "half'),
    ],
)
async def test_a_client_leaving_mid_body_is_no_error(
    hub: Running, caplog: pytest.LogCaptureFixture, path: str, content_type: str, partial: bytes
) -> None:
    caplog.set_level(logging.INFO)
    _, writer = await _connect(hub)
    writer.write(_head("POST", path, content_type, 1_000_000) + partial)
    await writer.drain()
    await asyncio.sleep(0.1)  # the handler is reading the body now
    writer.close()
    counts = await _wait_for_count(hub, path, "499")
    assert counts == {"499": 1.0}, counts
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("client went away" in r.getMessage() for r in caplog.records)
    leftovers = list((hub.settings.state_dir / "blobs").rglob("*.part"))
    assert leftovers == []


async def test_an_idle_connection_is_closed(strict_hub: Running) -> None:
    reader, writer = await _connect(strict_hub)
    began = time.monotonic()
    async with asyncio.timeout(5):
        assert await reader.read() == b""  # closed by the hub, nothing sent
    assert TIMEOUT_S * 0.8 <= time.monotonic() - began < 4
    writer.close()


async def test_a_connection_with_half_sent_headers_is_closed(strict_hub: Running) -> None:
    reader, writer = await _connect(strict_hub)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: hub\r\nX-Slow: ")
    await writer.drain()
    async with asyncio.timeout(5):
        assert await reader.read() == b""
    writer.close()


async def test_an_idle_keep_alive_connection_is_closed_after_a_request(
    strict_hub: Running,
) -> None:
    reader, writer = await _connect(strict_hub)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
    await writer.drain()
    async with asyncio.timeout(5):
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        while await reader.read(65536):
            pass  # the rest of the answer, then the hub closes the idle connection
    writer.close()


@pytest.mark.parametrize(
    ("path", "content_type", "partial"),
    [
        (f"{V1}/model-packages", "application/gzip", package_bytes()[:200]),
        (f"{V1}/prediction-environments", "application/json", b'{"name": "half'),
    ],
)
async def test_a_body_that_stops_arriving_is_answered_408(
    strict_hub: Running, path: str, content_type: str, partial: bytes
) -> None:
    reader, writer = await _connect(strict_hub)
    writer.write(_head("POST", path, content_type, 10_000) + partial)
    await writer.drain()
    began = time.monotonic()
    async with asyncio.timeout(5):
        status_line = await reader.readline()
        rest = await reader.read(65536)
    assert status_line.startswith(b"HTTP/1.1 408"), status_line + rest
    assert b"request_timeout" in rest
    assert b"stopped arriving" in rest or b"did not arrive" in rest
    assert time.monotonic() - began < 4
    writer.close()
    assert (await _counted(strict_hub, path)) == {"408": 1.0}


async def test_a_malformed_request_is_logged_at_info(
    hub: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    reader, writer = await _connect(hub)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: hub\r\nX-Bad: a\x00b\r\n\r\n")
    await writer.drain()
    async with asyncio.timeout(5):
        assert b" 400 " in await reader.readline()
    writer.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(r.name == "aiohttp.server" and r.levelno == logging.INFO for r in caplog.records)
