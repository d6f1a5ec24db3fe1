"""``pilothouse serve`` as a real process: starts, serves, stops cleanly on SIGTERM, restores."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from pilothouse.modelpkg import build_package
from tests.modelpkg.factory import SETOSA
from tests.serving.harness import TOKEN

pytestmark = pytest.mark.anyio


async def start(state: Path, *extra: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pilothouse", "serve", "--port", "0", "--admin-token", TOKEN,
        "--state-dir", str(state), *extra,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    async with asyncio.timeout(30):
        while True:
            line = (await proc.stderr.readline()).decode()
            assert line, "the server exited before listening"
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if found:
                return proc, found.group(1)


async def stop(proc: asyncio.subprocess.Process) -> int:
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(20):
        _, err = await proc.communicate()
    assert b"Traceback" not in err, err.decode()
    return proc.returncode if proc.returncode is not None else -1


async def wait_ready(session: aiohttp.ClientSession, url: str) -> None:
    async with asyncio.timeout(30):
        while True:
            async with session.get(url) as resp:
                if resp.status == 200:
                    return
            await asyncio.sleep(0.05)


async def test_serve_then_sigterm_then_restore(tmp_path: Path, iris: dict[str, Path]) -> None:
    info, archive = build_package(iris["rules"], tmp_path / "rules.tar.gz")
    state = tmp_path / "state"
    proc, base = await start(state, "--deployment", f"rules={archive}")
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, f"{base}/v2/models/rules/ready")
            async with session.post(
                f"{base}/v1/deployments/rules/predict", json={"rows": [SETOSA]}
            ) as resp:
                doc = await resp.json()
            assert resp.status == 200 and doc["predictions"] == ["setosa"]
    finally:
        assert await stop(proc) == 0
    proc, base = await start(state)
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, f"{base}/v2/health/ready")
            async with session.get(f"{base}/v2/models/rules") as resp:
                meta = await resp.json()
            assert meta["versions"] == ["iris-rules-1.0.0"], "restored from the state directory"
    finally:
        assert await stop(proc) == 0
    assert (state / "packages" / info.sha256).is_dir()


async def test_bad_settings_exit_2(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pilothouse", "serve", "--admin-token", "short",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert "admin_token" in err.decode() and "at least 8" in err.decode()
