"""The server closes idle and half-sent connections (``keepalive_timeout_s``, ``read_timeout_s``).

Before, a client that connected and sent nothing, or sent half its headers,
or announced a body and sent part of it, held a connection (and, for a body,
a handler) for as long as it liked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pilothouse.serving import ServerSettings, serve
from tests.serving.harness import TOKEN

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def running(tmp_path: Path, **overrides: Any) -> AsyncIterator[int]:
    settings = ServerSettings.load(
        {"admin_token": TOKEN, "port": 0, "state_dir": tmp_path / "state", **overrides}
    )
    stop = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(settings, stop=stop, started=port.set_result))
    try:
        yield await asyncio.wait_for(port, 10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def closed_after(reader: asyncio.StreamReader, limit_s: float) -> tuple[float, bytes]:
    """Seconds until the server closes the connection, and what it sent before."""
    began = time.monotonic()
    async with asyncio.timeout(limit_s):
        data = await reader.read()  # until EOF
    return time.monotonic() - began, data


async def test_an_idle_connection_is_closed(tmp_path: Path) -> None:
    async with running(tmp_path, keepalive_timeout_s=0.5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        waited, data = await closed_after(reader, 5)
        assert data == b"" and 0.3 < waited < 3
        writer.close()
        # ... and after an answered request, the kept-alive connection closes too.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        waited, data = await closed_after(reader, 5)
        assert data.startswith(b"HTTP/1.1 200") and waited < 3
        writer.close()


async def test_half_sent_headers_are_closed(tmp_path: Path) -> None:
    async with running(tmp_path, keepalive_timeout_s=0.5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\n")
        waited, data = await closed_after(reader, 5)
        assert data == b"" and waited < 3
        writer.close()


async def test_a_half_sent_body_gets_408_and_the_connection_closes(tmp_path: Path) -> None:
    async with running(tmp_path, read_timeout_s=0.5) as port:
        for path in ("/v2/models/iris/infer", "/v1/deployments/iris/predict"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                'Content-Length: 1000\r\n\r\n{"inputs": ['.encode()
            )
            waited, data = await closed_after(reader, 5)
            assert data.startswith(b"HTTP/1.1 408"), data
            assert b"read_timeout_s" in data
            assert 0.3 < waited < 3
            writer.close()
