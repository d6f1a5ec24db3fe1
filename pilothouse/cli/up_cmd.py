"""``pilothouse up``: the whole product on one machine, in one foreground process.

A hub and an agent with the ``process`` plugin, state under ``--state-dir``
(``./.pilothouse``). The first start registers a prediction environment named
``local``, uploads the example model packages from ``examples/models`` and
deploys the first one; what it created is remembered in ``up.json``, so the
next start resumes with the same hub state instead of creating it again.
Ctrl-C stops the agent (which stops its prediction servers), then the hub —
at any moment: while the hub starts, while the agent starts, while waiting for
the example deployment to become ready. Only the first start's registration (a
few requests) is let finish, so that ``up.json`` never records half of it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson

from pilothouse.agent import command as agent_cmd
from pilothouse.agent.hublink.client import API, HubClient
from pilothouse.agent.runtime import Agent
from pilothouse.agent.settings import AgentSettings
from pilothouse.foundation import cli, logs
from pilothouse.foundation.aio import tasks
from pilothouse.foundation.settings import LogSettings
from pilothouse.hub import Hub, HubSettings
from pilothouse.modelpkg.packing import build_package

EXAMPLE = "iris-1.0.0"

T = TypeVar("T")


class _Stopped(Exception):
    """Ctrl-C (or SIGTERM) arrived while ``up`` was waiting for something."""


def register(sub: Any) -> None:
    """Add ``up``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "up", help="run a hub and an agent (process plugin) together, with an example model",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--state-dir", type=Path, default=Path(".pilothouse"))
    parser.add_argument("--port", type=int, default=8700, help="hub port (default 8700)")
    parser.add_argument("--host", default="127.0.0.1", help="hub address")
    parser.add_argument("--examples", type=Path, default=Path("examples/models"),
                        help="model package directories to register on first start")  # fmt: skip
    parser.add_argument("--log-level", default="WARNING",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])  # fmt: skip
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Start everything; stop on SIGINT/SIGTERM."""
    handle = logs.configure(LogSettings(level=args.log_level))
    stop = asyncio.Event()
    try:
        asyncio.run(cli.until_signalled(_up(args, stop), stop.set))
    finally:
        handle.close()
    return 0


async def _up(args: argparse.Namespace, stop: asyncio.Event) -> None:
    state: Path = args.state_dir
    token = await asyncio.to_thread(_admin_token, state / "admin-token")
    hub = Hub(HubSettings.load(None, {
        "state_dir": state / "hub", "admin_token": token,
        "listen": {"host": args.host, "port": args.port}, "log": {"level": args.log_level},
    }))  # fmt: skip
    hub_task = asyncio.create_task(hub.serve(), name="hub")
    try:
        url = await _unless_stopped(stop, hub.wait_ready(), hub_task)
        # Not interruptible (a few requests): up.json must record all of it or nothing.
        setup = await _first_start(state, url, token, args.examples)
        await _serve_agent(args, stop, url, token, setup)
    except _Stopped:
        pass
    finally:
        hub.request_stop()
        await asyncio.gather(hub_task, return_exceptions=True)
    print("pilothouse: stopped", flush=True)


async def _serve_agent(
    args: argparse.Namespace, stop: asyncio.Event, url: str, token: str, setup: dict[str, Any]
) -> None:
    if stop.is_set():
        raise _Stopped
    state: Path = args.state_dir
    agent = Agent(_agent_settings(state, url, setup, args.log_level))
    since = datetime.now(UTC)
    agent_task = asyncio.create_task(agent.serve(), name="agent")
    try:
        await _unless_stopped(stop, agent.wait_ready(), agent_task)
        await _unless_stopped(stop, _announce(url, token, state, setup, since), agent_task)
        await _until(stop, agent_task)
    finally:
        agent.request_stop()
        await asyncio.gather(agent_task, return_exceptions=True)


async def _unless_stopped(
    stop: asyncio.Event, work: Awaitable[T], serving: asyncio.Task[None]
) -> T:
    """``work``'s result, unless a stop is asked for first (``_Stopped``) or ``serving`` ends.

    ``serving`` is the task that ``work`` waits on (the hub's, the agent's): if
    it ends first, its error is raised instead of waiting for ever.
    """
    job = asyncio.ensure_future(work)
    waiter = asyncio.create_task(stop.wait(), name="up: stop requested")
    try:
        await asyncio.wait([job, waiter, serving], return_when=asyncio.FIRST_COMPLETED)
    finally:
        await tasks.cancel_and_wait(waiter)
        if not job.done():
            await tasks.cancel_and_wait(job)
    if job.done() and not job.cancelled():
        return job.result()
    if stop.is_set():
        raise _Stopped
    serving.result()  # raises why it ended
    raise _Stopped  # it ended without an error: nothing left to wait for


async def _until(stop: asyncio.Event, agent_task: asyncio.Task[None]) -> None:
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([waiter, agent_task], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
    if agent_task.done() and not agent_task.cancelled() and agent_task.exception():
        raise agent_task.exception()  # type: ignore[misc]


def _admin_token(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token


def _agent_settings(state: Path, url: str, setup: dict[str, Any], level: str) -> AgentSettings:
    return agent_cmd.load(None, {
        "prediction_environment": setup["pe"], "plugin": "process",
        "plugin_settings": {"stop_servers_on_unload": True},
        "state_dir": state / "agent",
        "hub": {"url": url, "token": setup["agent_token"]},
        "health": {"interval_s": 10}, "log": {"level": level},
    })  # fmt: skip


async def _first_start(state: Path, url: str, token: str, examples: Path) -> dict[str, Any]:
    """Create the PE, its agent token, the example packages and deployment, once."""
    record = state / "up.json"
    if await asyncio.to_thread(record.exists):
        saved: dict[str, Any] = orjson.loads(await asyncio.to_thread(record.read_bytes))
        return saved
    admin = HubClient(url, token)
    try:
        pe = await admin.request("POST", f"{API}/prediction-environments",
                                 body={"name": "local", "platform": "process"})  # fmt: skip
        agent_token = await admin.request(
            "POST", f"{API}/prediction-environments/{pe['id']}/agent-tokens"
        )
        packages = await _upload_examples(admin, examples)
        setup: dict[str, Any] = {"pe": pe["id"], "agent_token": agent_token["token"],
                                 "packages": packages}  # fmt: skip
        if EXAMPLE in packages:
            dep = await admin.request("POST", f"{API}/deployments", body={
                "name": "iris", "prediction_environment_id": pe["id"],
                "model_package_id": packages[EXAMPLE]})  # fmt: skip
            setup["deployment"] = dep["id"]
    finally:
        await admin.close()
    await asyncio.to_thread(_write_private, record, orjson.dumps(setup, option=orjson.OPT_INDENT_2))
    return setup


async def _upload_examples(admin: HubClient, examples: Path) -> dict[str, str]:
    found = sorted(p for p in await asyncio.to_thread(_dirs, examples))
    uploaded: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for directory in found:
            _, archive = await asyncio.to_thread(
                build_package, directory, Path(tmp) / f"{directory.name}.tar.gz"
            )
            data = await asyncio.to_thread(archive.read_bytes)
            pkg = await admin.request("POST", f"{API}/model-packages", raw=data,
                                      content_type="application/gzip")  # fmt: skip
            uploaded[directory.name] = pkg["id"]
    return uploaded


def _dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if (p / "model.yaml").is_file()]


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


async def _announce(
    url: str, token: str, state: Path, setup: dict[str, Any], since: datetime
) -> None:
    """Print where things are, once the agent of *this* run reports the deployment ready."""
    print(f"pilothouse: hub at {url} (admin token in {state / 'admin-token'})", flush=True)
    print(f"pilothouse: web UI at {url}/ (log in with the admin token)", flush=True)
    dep = setup.get("deployment")
    if dep is None:
        print("pilothouse: no example deployment (examples/models not found)", flush=True)
        return
    admin = HubClient(url, token)
    try:
        for _ in range(1200):
            got = await admin.request("GET", f"{API}/deployments/{dep}")
            observed = got["observed"]
            fresh = (
                observed["updated_at"] and datetime.fromisoformat(observed["updated_at"]) > since
            )
            if fresh and observed["state"] == "ready" and observed["prediction_url"]:
                break
            await asyncio.sleep(0.1)
        else:
            print(f"pilothouse: deployment {dep} is not ready yet; see 'pilothouse events list'")
            return
        package = await admin.request("GET", f"{API}/model-packages/{observed['model_package_id']}")
    finally:
        await admin.close()
    samples = package["manifest"].get("samples") or [{}]
    rows = orjson.dumps({"rows": samples[:1]}).decode()
    print(f"pilothouse: deployment {dep} is ready; try:\n"
          f"  curl -s -X POST {observed['prediction_url']} -H 'Content-Type: application/json' "
          f"-d '{rows}'", flush=True)  # fmt: skip
    if observed.get("grpc_target"):
        print(f"pilothouse: gRPC (Open Inference Protocol) at {observed['grpc_target']}, "
              f"model name {dep!r}", flush=True)  # fmt: skip
    print(f"pilothouse: its live activity: {url}/#/deployments/{dep}", flush=True)
    print("pilothouse: Ctrl-C stops everything", flush=True)
