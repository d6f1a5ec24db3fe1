"""Prediction server processes: the handle, the process calls, the record that outlives the agent.

A server is ``python -m pilothouse.serving`` in its own session, so it survives the
agent: what runs is recorded in ``<state_dir>/servers.json`` (pid, ports, admin
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

from pilothouse.plugins.fleet import ServerAPI


@dataclass(slots=True)
class Server:
    """One prediction server process (a :class:`~pilothouse.plugins.fleet.ServerHandle`)."""

    key: str
    host: str
    port: int
    token: str
    state_dir: Path
    public_host: str | None = None
    pid: int | None = None
    grpc_port: int | None = None
    """Its gRPC port (``--grpc-port``); None: it serves no gRPC."""
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)
    api: ServerAPI | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        """Where the agent reaches it."""
        return f"http://{self.host}:{self.port}"

    @property
    def public_url(self) -> str:
        """Where clients reach it (``public_host`` when they know the machine by another name)."""
        return f"http://{self.public_host or self.host}:{self.port}"

    @property
    def grpc_target(self) -> str | None:
        """Where gRPC clients reach it (``public_host`` as for ``public_url``)."""
        if self.grpc_port is None:
            return None
        return f"{self.public_host or self.host}:{self.grpc_port}"

    @property
    def log_path(self) -> Path:
        """Its stdout and stderr."""
        return self.state_dir / "server.log"

    def record(self) -> dict[str, Any]:
        """What ``servers.json`` keeps of it."""
        return {"port": self.port, "token": self.token, "pid": self.pid,
                "state_dir": str(self.state_dir), "grpc_port": self.grpc_port}  # fmt: skip

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


def new_server(
    key: str, host: str, public_host: str | None, state_root: Path, *, grpc: bool
) -> Server:
    """A server description with fresh ports (gRPC too if ``grpc``), token and state directory."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in key)
    port = free_port(host)
    grpc_port = free_port(host) if grpc else None
    return Server(key, host, port, secrets.token_urlsafe(24), state_root / safe, public_host,
                  grpc_port=grpc_port)  # fmt: skip


async def start_process(server: Server, extra_args: list[str]) -> None:
    """Start the server process (readiness is the fleet's to wait for)."""
    await asyncio.to_thread(server.state_dir.mkdir, parents=True, exist_ok=True)
    if server.grpc_port is not None:
        extra_args = ["--grpc-port", str(server.grpc_port), *extra_args]
    log = await asyncio.to_thread(server.log_path.open, "ab")
    try:
        server.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pilothouse.serving", "--host", server.host,
            "--port", str(server.port), "--state-dir", str(server.state_dir), *extra_args,
            env={**os.environ, "PILOTHOUSE_SERVE_ADMIN_TOKEN": server.token},
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
    finally:
        await asyncio.to_thread(log.close)
    server.pid = server.process.pid


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


def exit_summary(server: Server) -> tuple[str, int | None]:
    """How the process ended, in words, and its exit code (negative: the signal)."""
    code = server.process.returncode if server.process is not None else None
    if code is None:
        return "is not running (started by an earlier agent: its exit code is unknown)", None
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name} (see {server.log_path})", code
    return f"exited with code {code} (see {server.log_path})", code


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
