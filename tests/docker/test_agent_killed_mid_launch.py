"""An agent SIGKILLed in the middle of a launch, then started again: no duplicate, no orphan.

A real ``pilothouse agent run --plugin docker`` (standalone, a desired-state
file) is killed with SIGKILL at a chosen moment of its first launch — as soon
as its first container exists (perhaps not even started), or once its server
container runs (perhaps not yet answering, nothing loaded yet). A second agent
on the same state then brings the deployment to ``ready``, and the engine
holds exactly the containers it should — one server (and one front in
dedicated mode), each with its volume and nothing else. A server that was
running is adopted (its container id is unchanged), not started again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.docker.support import ROWS, RULES, TIMEOUT, new_owner, owned, purge, settings, until
from tests.helpers import read_events
from tests.process.support import predict

pytestmark = pytest.mark.anyio

PE = "pe-killed"


def _config(tmp: Path, image: str, owner: str, mode: str) -> Path:
    desired = tmp / "desired.yaml"
    desired.write_text(yaml.safe_dump({"deployments": [{"id": "a", "model_package_id": "rules"}]}))
    config = {
        "prediction_environment": PE,
        "plugin": "docker",
        "state_dir": str(tmp / "agent"),
        "plugin_settings": settings(image, owner, mode=mode, packages={"rules": str(RULES)}),
        "intake": {"desired_state_file": str(desired), "poll_interval_s": 0.2},
        "health": {"interval_s": 3600, "heartbeat_interval_s": 3600},
        "actions": {"timeout_s": TIMEOUT, "backoff_initial_s": 0.2, "backoff_max_s": 1.0},
    }
    path = tmp / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pilothouse", "agent", "run", "--config", str(config)],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            env=env,
        )


async def _containers(owner: str) -> list[dict[str, Any]]:
    return (await owned(owner))[0]


async def _until_containers(owner: str, wanted: str) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while loop.time() < deadline:
        found = await _containers(owner)
        servers = [c for c in found if c["Labels"]["io.pilothouse.role"] == "server"]
        if (wanted == "created" and found) or (
            wanted == "running" and any(c["State"] == "running" for c in servers)
        ):
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {wanted} container within {TIMEOUT}s")


@pytest.mark.parametrize(
    ("mode", "moment"),
    [("shared", "running"), ("dedicated", "running"), ("dedicated", "created")],
)
async def test_killed_mid_launch_then_restarted_adopts_without_duplicate_or_orphan(
    tmp_path: Path, pilothouse_image: str, mode: str, moment: str
) -> None:
    owner = new_owner()
    config = _config(tmp_path, pilothouse_image, owner, mode)
    log = tmp_path / "agent.log"
    first = second = None
    try:
        first = _agent(config, log)
        found = await _until_containers(owner, moment)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        running = {
            c["Id"]
            for c in found
            if c["State"] == "running" and c["Labels"]["io.pilothouse.role"] == "server"
        }

        events_file = tmp_path / "agent" / "events.jsonl"
        before = len(read_events(events_file))
        second = _agent(config, log)
        await until(
            lambda: _ready(events_file, before),
            TIMEOUT,
            f"the deployment ready after the restart\n{log.read_text()[-3000:]}",
        )

        containers, volumes = await owned(owner)
        roles = sorted(c["Labels"]["io.pilothouse.role"] for c in containers)
        assert roles == (["server"] if mode == "shared" else ["front", "server"]), containers
        assert all(c["State"] == "running" for c in containers), containers
        assert sorted(volumes) == sorted(str(c["Names"][0]).lstrip("/") for c in containers)
        server = next(c for c in containers if c["Labels"]["io.pilothouse.role"] == "server")
        if running:
            assert server["Id"] in running, "the running server was adopted, not replaced"
        entry = "front" if mode == "dedicated" else "server"
        port = next(
            p["PublicPort"]
            for c in containers
            for p in c["Ports"]
            if c["Labels"]["io.pilothouse.role"] == entry and "PublicPort" in p
        )
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/v1/deployments/a/predict"
            assert (await predict(http, url, ROWS))[0] == 200
    finally:
        for agent in (first, second):
            if agent is not None and agent.poll() is None:
                agent.send_signal(signal.SIGTERM)
                agent.wait(30)
        await purge(owner)


def _ready(events_file: Path, after: int) -> bool:
    return any(
        e["type"] == "deployment.ready" and e.get("deployment_id") == "a"
        for e in read_events(events_file)[after:]
    )
