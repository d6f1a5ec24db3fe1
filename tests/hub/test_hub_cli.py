"""``pilothouse hub run`` as a real process: serves, reports its port, stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from pilothouse.cli import main
from tests.hub.support import V1

pytestmark = pytest.mark.anyio


async def test_run_serves_then_exits_0_on_sigterm(tmp_path: Path, anyio_backend: str) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text("listen: {port: 1}\nagents: {heartbeat_timeout_s: 30}\n")
    env = {**os.environ, "PILOTHOUSE_HUB_AGENTS__KEEPALIVE_INTERVAL_S": "5"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pilothouse", "hub", "run", "--config", str(config), "--port", "0",
        "--state-dir", str(tmp_path / "state"), "--log-format", "json",
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        url = await asyncio.wait_for(_listening(proc.stderr), 20)
        token = (tmp_path / "state" / "admin-token").read_text().strip()
        async with aiohttp.ClientSession(url, headers={"Authorization": f"Bearer {token}"}) as s:
            async with s.get("/readyz") as resp:
                assert resp.status == 200
            async with s.post(
                f"{V1}/prediction-environments", json={"name": "p", "platform": "test"}
            ) as resp:
                assert resp.status == 201
            async with s.get(f"{V1}/prediction-environments/nope/watch") as resp:
                assert resp.status == 404
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        rest = (await proc.stderr.read()).decode()
        assert "Traceback" not in rest and "hub stopped" in rest
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _listening(stderr: asyncio.StreamReader) -> str:
    while line := (await stderr.readline()).decode():
        found = re.search(r"hub listening on (http://\S+?)[ \"]", line)
        if found:
            return found.group(1)
    raise AssertionError("the hub exited before listening")


def test_settings_table_documents_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hub", "settings"]) == 0
    table = capsys.readouterr().out
    for name in (
        "listen.port",
        "database.url",
        "limits.max_package_bytes",
        "agents.heartbeat_timeout_s",
    ):
        assert f"`{name}`" in table
    assert "`PILOTHOUSE_HUB_LIMITS__MAX_EVENT_BATCH`" in table
    assert all(line.rstrip().endswith("|") and "|  |" not in line for line in table.splitlines())


def test_bad_configuration_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text("listen: {port: -5}\n")
    assert main(["hub", "run", "--config", str(config)]) == 2
    assert "listen.port" in capsys.readouterr().err
    assert main(["hub", "run", "--database-url", "mysql://x", "--state-dir", str(tmp_path)]) == 2
    assert "database.url" in capsys.readouterr().err
    unreachable = "postgresql://hub@127.0.0.1:1/hub"  # nothing listens on port 1
    assert main(["hub", "run", "--database-url", unreachable, "--state-dir", str(tmp_path)]) == 1
    assert "cannot connect to the PostgreSQL database" in capsys.readouterr().err
