"""``pilothouse events export`` against a real hub: the file equals the list; progress on a TTY."""

from __future__ import annotations

import asyncio
import os
import pty
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.hub.support import ADMIN, V1, Running, at, event, ok

pytestmark = pytest.mark.anyio


async def _cli(hub: Running, *args: str, stderr: Any = asyncio.subprocess.PIPE) -> tuple[int, str]:
    env = {**os.environ, "PILOTHOUSE_HUB_URL": hub.url, "PILOTHOUSE_TOKEN": ADMIN}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pilothouse", "events", "export", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=stderr,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def _seed(hub: Running) -> str:
    pe = await hub.pe()
    events = [
        event(pe["id"], time=at(i), status="failing" if i % 2 else "passing", data={"i": i})
        for i in range(300)
    ]
    await ok(hub.admin.post(f"{V1}/events", json={"events": events}))
    return str(pe["id"])


async def test_export_to_a_file_equals_the_list(hub: Running, tmp_path: Path) -> None:
    pe = await _seed(hub)
    target = tmp_path / "failing.jsonl"
    code, out = await _cli(hub, "--format", "jsonl", "--status", "failing", "--pe", pe,
                           "-o", str(target))  # fmt: skip
    assert code == 0 and out == ""
    assert not target.with_name("failing.jsonl.part").exists()
    exported = [orjson.loads(line) for line in target.read_bytes().splitlines()]
    listed = await ok(hub.admin.get(f"{V1}/events", params={"status": "failing", "limit": "1000"}))
    assert exported == listed["items"] and len(exported) == 150


async def test_export_to_stdout_is_csv_and_quiet_in_a_pipe(hub: Running) -> None:
    await _seed(hub)
    code, out = await _cli(hub)
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("id,time,") and len(lines) == 301


async def test_progress_is_shown_on_a_terminal(hub: Running, tmp_path: Path) -> None:
    await _seed(hub)
    leader, follower = pty.openpty()
    try:
        code, _ = await _cli(hub, "-o", str(tmp_path / "all.csv"), stderr=follower)
        os.close(follower)
        shown = await asyncio.to_thread(_read_all, leader)
    finally:
        os.close(leader)
    assert code == 0
    assert "exported ~300 events" in shown and "MB" in shown


async def test_a_refused_export_leaves_no_file(hub: Running, tmp_path: Path) -> None:
    target = tmp_path / "x.csv"
    code, _ = await _cli(hub, "--since", "yesterday", "-o", str(target))
    assert code == 1
    assert not target.exists() and not target.with_name("x.csv.part").exists()


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
