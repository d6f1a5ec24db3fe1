"""``pilothouse events export`` against a real hub: the file equals the list; progress on a TTY."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pty
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.hub.support import ADMIN, V1, Running, at, event, ok

pytestmark = pytest.mark.anyio


async def _cli(hub: Running, *args: str, stderr: Any = asyncio.subprocess.PIPE) -> tuple[int, str]:
    code, out, _ = await _cli_run(hub.url, *args, stderr=stderr)
    return code, out


async def _cli_run(
    url: str, *args: str, stderr: Any = asyncio.subprocess.PIPE
) -> tuple[int, str, str]:
    env = {**os.environ, "PILOTHOUSE_HUB_URL": url, "PILOTHOUSE_TOKEN": ADMIN}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pilothouse", "events", "export", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=stderr,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), (err or b"").decode()


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


async def test_an_export_cut_mid_stream_leaves_no_file_and_the_hub_healthy(
    hub: Running, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    pe = await hub.pe()
    # About 15 MB of JSON lines: more than the socket buffers on the way can hold (the hub's
    # send buffer grows to 4 MB at most, the proxy's is fixed), so the hub is mid-stream.
    for start in range(0, 12_000, 500):  # under 1 MB a request, as aiohttp prefers
        batch = [event(pe["id"], time=at(start + i), message="x" * 1000) for i in range(500)]
        await ok(hub.admin.post(f"{V1}/events", json={"events": batch}))
    target = tmp_path / "all.jsonl"
    partial = target.with_name("all.jsonl.part")

    async def written() -> None:
        async with asyncio.timeout(20):
            while not (partial.exists() and partial.stat().st_size > 0):  # noqa: ASYNC110
                await asyncio.sleep(0.01)

    # The connection is cut after 2 MB of the answer, once the CLI has put some in .part.
    async with _cutting_proxy(hub.url, 2_000_000, written) as url:
        code, out, err = await _cli_run(url, "--format", "jsonl", "-o", str(target))
    assert code == 1, err
    assert "pilothouse: GET /api/v1/events/export" in err and "unreachable" in err, err
    assert "Traceback" not in err
    assert not target.exists() and not partial.exists(), "a cut export never looks whole"
    # The hub saw a client leave: nothing worse than that, and it goes on serving.
    left = "export ended early: the client went away"
    async with asyncio.timeout(10):
        while left not in caplog.messages:  # noqa: ASYNC110 - the hub's own log
            await asyncio.sleep(0.02)
    troubles = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert troubles == [], [r.getMessage() for r in troubles]
    metrics = (await ok(hub.admin.get("/metrics"))).decode()
    assert 'status="500"' not in metrics
    code, out = await _cli(hub, "--format", "jsonl")
    assert code == 0 and len(out.splitlines()) == 12_000


@contextlib.asynccontextmanager
async def _cutting_proxy(
    target: str, budget: int, before_cut: Callable[[], Awaitable[None]]
) -> AsyncIterator[str]:
    """A TCP proxy to ``target``: after ``budget`` bytes of answer and ``before_cut()``,
    it closes both sides."""
    host, port = target.removeprefix("http://").split(":")

    async def pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limit: int | None
    ) -> None:
        sent = 0
        while data := await reader.read(65536):
            if limit is not None and sent + len(data) >= limit:
                writer.write(data[: limit - sent])
                await writer.drain()
                await before_cut()
                return
            writer.write(data)
            await writer.drain()
            sent += len(data)

    async def serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # no autotuning to 32 MB
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        hub_r, hub_w = await asyncio.open_connection(sock=sock)
        upstream = asyncio.create_task(pipe(client_r, hub_w, None))
        try:
            await pipe(hub_r, client_w, budget)
        finally:
            upstream.cancel()
            await asyncio.gather(upstream, return_exceptions=True)
            for writer in (client_w, hub_w):
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()
