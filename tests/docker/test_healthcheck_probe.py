"""The image's health check script, run as Docker runs it, against real local HTTP servers.

No engine needed: the script is a plain Python file; what it must get right is which URL it
asks and what counts as healthy (200 only; a refused connection or a 503 is not).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

pytestmark = pytest.mark.anyio

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "healthcheck.py"


@contextlib.asynccontextmanager
async def probe_server(path: str, status: int) -> AsyncIterator[int]:
    """A server answering ``status`` on ``path``; yields its port."""

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path}, status=status)

    app = web.Application()
    app.router.add_get(path, answer)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


PORT_VARIABLES = ("PILOTHOUSE_SERVE_PORT", "PILOTHOUSE_HUB_LISTEN__PORT", "PILOTHOUSE_HTTP__PORT")


async def closed_port() -> int:
    """A port nothing listens on any more (so no process of this machine answers there)."""
    async with probe_server("/unused", 200) as port:
        pass
    return port


async def check(env: dict[str, str]) -> tuple[int, str]:
    """Run the script as the engine would: its exit code and what it printed.

    Probes not named in ``env`` point at a closed port, never at a default port where some
    other process of this machine may answer.
    """
    nowhere = str(await closed_port())
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        env={**clean, **dict.fromkeys(PORT_VARIABLES, nowhere), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    return await process.wait(), output.decode()


@pytest.mark.parametrize(
    ("variable", "path"),
    [
        ("PILOTHOUSE_SERVE_PORT", "/v2/health/ready"),
        ("PILOTHOUSE_HUB_LISTEN__PORT", "/readyz"),
        ("PILOTHOUSE_HTTP__PORT", "/healthz"),
    ],
    ids=["serve", "hub", "agent"],
)
async def test_each_process_probe_on_its_port(variable: str, path: str) -> None:
    async with probe_server(path, 200) as port:
        code, output = await check({variable: str(port)})
    assert code == 0, output
    assert f"127.0.0.1:{port}{path}" in output


async def test_not_ready_is_unhealthy() -> None:
    async with probe_server("/v2/health/ready", 503) as port:
        code, output = await check({"PILOTHOUSE_SERVE_PORT": str(port)})
    assert code == 1
    assert f"127.0.0.1:{port}/v2/health/ready: HTTP 503" in output


async def test_nothing_listening_is_unhealthy_and_says_what_it_asked() -> None:
    port = await closed_port()
    code, output = await check(dict.fromkeys(PORT_VARIABLES, str(port)))
    assert code == 1
    assert output.count(f"127.0.0.1:{port}") == 3, output


async def test_explicit_url_is_the_only_one_asked() -> None:
    async with probe_server("/custom", 200) as port:
        code, output = await check(
            {"PILOTHOUSE_HEALTHCHECK_URL": f"http://127.0.0.1:{port}/custom"}
        )
    assert code == 0, output
    async with probe_server("/v2/health/ready", 200) as port:
        code, output = await check(
            {
                "PILOTHOUSE_HEALTHCHECK_URL": f"http://127.0.0.1:{port}/elsewhere",
                "PILOTHOUSE_SERVE_PORT": str(port),
            }
        )
    assert code == 1
    assert "/elsewhere: HTTP 404" in output
