"""The container image, on the real engine: what it is, and each process running in it.

``pilothouse serve`` runs as uid 10001, serves the example iris package copied in with
``put_archive``, turns healthy through the image's own HEALTHCHECK, stops cleanly on
SIGTERM, and runs on a read-only root filesystem (it writes nowhere but its volume). Each
process (hub, agent, server with its admin token from a ``_FILE`` secret) turns healthy on a
read-only root filesystem, logs JSON lines on stdout, and stops on SIGTERM or SIGINT (sent to
it as PID 1) with exit code 0.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp
import orjson
import pytest

from tests.docker_support import (
    container,
    filesystem_changes,
    tar_directory,
    wait_healthy,
)
from tests.modelpkg.factory import SETOSA, VIRGINICA

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
IRIS = ROOT / "examples" / "models" / "iris-1.0.0"
UID = GID = 10001
VOLUME = "/var/lib/pilothouse"
SIZE_BUDGET_BYTES = 300_000_000
"""Decimal megabytes, as ``docker images`` counts: the issue's target (277 MB with the local base,
see README, "Container image")."""
STOP_WITHIN_S = 15.0
"""A clean stop of an idle hub or agent takes well under a second; this leaves room for a
loaded 2-core machine."""
HEALTH_INTERVAL_NS = 1_000_000_000
"""The tests ask the engine to run the image's own check every second (not every 5 s)."""


def _outside_volume_and_tmp(paths: list[str]) -> list[str]:
    # The volume is not in the container's layer at all; /tmp is scratch space.
    return [p for p in paths if not any(p == d or p.startswith(f"{d}/") for d in ("/tmp", VOLUME))]


def _quick_health() -> dict[str, Any]:
    # Only the interval: the engine keeps the image's test command, timeout and retries.
    return {"Healthcheck": {"Interval": HEALTH_INTERVAL_NS}}


async def test_image_config(docker: aiodocker.Docker, pilothouse_image: str) -> None:
    image = await docker.images.inspect(pilothouse_image)
    config = image["Config"]
    assert config["User"] == f"{UID}:{GID}"
    assert config["Entrypoint"] == ["pilothouse"]
    assert VOLUME in config["Volumes"]
    assert config["WorkingDir"] == VOLUME
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert "curl" not in " ".join(config["Healthcheck"]["Test"])


async def test_image_size_within_budget(docker: aiodocker.Docker, pilothouse_image: str) -> None:
    size = (await docker.images.inspect(pilothouse_image))["Size"]
    print(f"\nimage size: {size / 1e6:.1f} MB")
    assert size <= SIZE_BUDGET_BYTES, f"{size / 1e6:.1f} MB > {SIZE_BUDGET_BYTES / 1e6:.0f} MB"


async def test_serve_predicts_as_non_root_and_writes_only_its_volume(
    docker: aiodocker.Docker, pilothouse_image: str
) -> None:
    config = {
        "Image": pilothouse_image,
        "Cmd": ["serve", "--deployment", f"iris={VOLUME}/packages/iris-1.0.0"],
        "Env": ["PILOTHOUSE_SERVE_ADMIN_TOKEN=admin-token-for-tests"],
        "ExposedPorts": {"8702/tcp": {}},
        "HostConfig": {
            "PortBindings": {"8702/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
            "ReadonlyRootfs": True,
        },
        **_quick_health(),
    }
    async with container(docker, config) as server:
        package = tar_directory(IRIS, "packages/iris-1.0.0", uid=UID, gid=GID)
        await server.put_archive(VOLUME, package)
        await server.start()
        await wait_healthy(server)

        top = await server.top(ps_args="-o pid,uid,args")
        uid_column = top["Titles"].index("UID")
        assert top["Processes"], top
        assert {row[uid_column] for row in top["Processes"]} == {str(UID)}, top

        ports = (await server.show())["NetworkSettings"]["Ports"]["8702/tcp"]
        url = f"http://127.0.0.1:{ports[0]['HostPort']}/v1/deployments/iris/predict"
        async with aiohttp.ClientSession() as session:
            for _ in range(3):
                async with session.post(url, json={"rows": [SETOSA, VIRGINICA]}) as response:
                    body = await response.json()
                    assert response.status == 200, body
            assert body["predictions"] == ["setosa", "virginica"]
            assert body["model_package_id"] == "iris-1.0.0"

        await server.stop(t=10)
        state = (await server.show())["State"]
        assert state["ExitCode"] == 0, state
        assert _outside_volume_and_tmp(await filesystem_changes(docker, server)) == []
        written = await server.get_archive(f"{VOLUME}/serve")
        assert [m.name for m in written.getmembers() if m.isfile()], "no state in the volume"


SERVE_TOKEN_FILE = f"{VOLUME}/secrets/admin-token"
PROCESSES = {
    "hub": ([], ["hub", "run"]),
    "agent": ([], ["agent", "run"]),
    # The server's admin token from a file, the Docker-secrets way.
    "serve": ([f"PILOTHOUSE_SERVE_ADMIN_TOKEN_FILE={SERVE_TOKEN_FILE}"], ["serve"]),
}


@pytest.mark.parametrize("signal", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("process_name", list(PROCESSES))
async def test_each_process_runs_on_a_read_only_root_and_stops_on_a_signal_with_exit_0(
    docker: aiodocker.Docker,
    pilothouse_image: str,
    process_name: str,
    signal: str,
    tmp_path: Path,
) -> None:
    env, command = PROCESSES[process_name]
    config = {
        "Image": pilothouse_image,
        "Cmd": command,
        "Env": env,
        "HostConfig": {"ReadonlyRootfs": True},  # all they write is under the volume
        **_quick_health(),
    }
    async with container(docker, config) as process:
        if process_name == "serve":
            (tmp_path / "secrets").mkdir()
            (tmp_path / "secrets" / "admin-token").write_text("token-from-a-file\n")
            await process.put_archive(
                VOLUME, tar_directory(tmp_path / "secrets", "secrets", uid=UID, gid=GID)
            )
        await process.start()
        await wait_healthy(process)
        started = time.monotonic()
        await process.kill(signal=signal)  # to PID 1: the process itself, no init
        result = await process.wait(timeout=STOP_WITHIN_S)
        took = time.monotonic() - started
        assert result["StatusCode"] == 0, (result, await process.log(stdout=True, stderr=True))
        assert took < STOP_WITHIN_S
        # In a container the logs are JSON lines on stdout, and nothing goes to stderr.
        out = "".join(await process.log(stdout=True)).splitlines()
        assert out, "no log on stdout"
        assert all(orjson.loads(line)["level"] for line in out), out[:3]
        assert "".join(await process.log(stderr=True)) == ""
