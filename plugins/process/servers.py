"""Prediction server processes: start, adopt, watch, stop.

A server is ``python -m pilothouse.serving`` in its own session, so it survives the
agent: what runs is recorded in ``<state_dir>/servers.json`` (pid, port, admin
token) and a restarted agent adopts a server that is still alive and answers
with its token, instead of starting a duplicate. A server is recognized by its
pid *and* by answering its admin API with the recorded token, so a recycled
pid is never mistaken for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pilothouse.agent.errors import PluginNotReadyError
from pilothouse.plugins.process.admin import ServerAPI


@dataclass(slots=True)
class Server:
    """One prediction server process."""

    key: str
    port: int
    token: str
    state_dir: Path
    pid: int | None = None
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)
    api: ServerAPI | None = field(default=None, repr=False)

    def record(self) -> dict[str, Any]:
        """What ``servers.json`` keeps of it."""
        return {"port": self.port, "token": self.token, "pid": self.pid,
                "state_dir": str(self.state_dir)}  # fmt: skip

    def alive(self) -> bool:
        """Whether the process still runs."""
        if self.process is not None:
            return self.process.returncode is None
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return _not_zombie(self.pid)


def _not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def free_port(host: str) -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def new_server(key: str, host: str, state_root: Path) -> Server:
    """A server description with a fresh port, token and state directory."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in key)
    return Server(key, free_port(host), secrets.token_urlsafe(24), state_root / safe)


async def spawn(server: Server, host: str, extra_args: list[str], ready_timeout_s: float) -> None:
    """Start the server process and wait until it is ready."""
    await asyncio.to_thread(server.state_dir.mkdir, parents=True, exist_ok=True)
    log = await asyncio.to_thread((server.state_dir / "server.log").open, "ab")
    try:
        server.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pilothouse.serving", "--host", host, "--port", str(server.port),
            "--state-dir", str(server.state_dir), *extra_args,
            env={**os.environ, "PILOTHOUSE_SERVE_ADMIN_TOKEN": server.token},
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
    finally:
        await asyncio.to_thread(log.close)
    server.pid = server.process.pid
    await wait_ready(server, ready_timeout_s)


async def wait_ready(server: Server, timeout_s: float) -> None:
    """Wait for /v2/health/ready, or raise ``PluginNotReadyError``."""
    assert server.api is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if not server.alive():
            code = server.process.returncode if server.process else "?"
            raise PluginNotReadyError(
                f"prediction server {server.key!r} exited with {code} while starting; "
                f"see {server.state_dir / 'server.log'}"
            )
        if await server.api.ready():
            return
        await asyncio.sleep(0.05)
    raise PluginNotReadyError(f"prediction server {server.key!r} not ready after {timeout_s:g}s")


async def terminate(server: Server, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; reap it if it is our child."""
    if server.pid is None or not server.alive():
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(server.pid, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    # An adopted server is not our child: there is nothing to wait on but its pid.
    while server.alive() and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    if server.alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGKILL)
    if server.process is not None:
        await server.process.wait()


def load_records(path: Path) -> dict[str, dict[str, Any]]:
    """``servers.json``, or nothing."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def save_records(path: Path, servers: dict[str, Server]) -> None:
    """Write ``servers.json`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps({k: s.record() for k, s in servers.items()}))
    os.replace(tmp, path)
