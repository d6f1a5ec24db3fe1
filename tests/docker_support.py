"""Tests against a real Docker engine: finding the engine, building the image once, containers.

Import the fixtures into a ``conftest.py`` (``tests/docker/conftest.py`` does) to use them:

- ``docker_engine`` (session): the engine's version, or the test is skipped with the reason
  when no engine answers — unless ``PILOTHOUSE_REQUIRE_DOCKER=1`` (CI sets it), where a
  missing engine fails the test instead, so CI never passes by skipping.
- ``pilothouse_image`` (session): the project's image, built once per session by
  ``tools/docker_image.sh`` — the script ``make image`` runs, with its caches, so a session
  after the first pays seconds.
- ``docker``: an ``aiodocker`` client for the test's event loop.
- ``docker_compose`` (session): the compose command (Debian's ``docker-compose`` 1.29, or the
  ``docker compose`` plugin); skipped (failed in CI) like the engine when there is none.

``container()`` creates a container, yields it and always removes it with its volumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NoReturn

import aiodocker
import pytest
from aiodocker.containers import DockerContainer

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "pilothouse:test-" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
"""The tag the tests build (beside ``make image``'s ``pilothouse:latest``; same layers), one per
checkout: two checkouts testing on one engine must not retag each other's image mid-session."""
LABEL = "io.pilothouse.test"
"""Every container a test creates carries this label (with the test's node id)."""
BUILD_TIMEOUT_S = 900.0
PING_TIMEOUT_S = 10.0


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("PILOTHOUSE_REQUIRE_DOCKER") == "1":
        pytest.fail(f"PILOTHOUSE_REQUIRE_DOCKER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


async def _engine_version() -> dict[str, Any]:
    async with aiodocker.Docker() as client:
        version: dict[str, Any] = await asyncio.wait_for(client.version(), PING_TIMEOUT_S)
        return version


@pytest.fixture(scope="session")
def docker_engine() -> dict[str, Any]:
    """The reachable engine's version document; skip (or fail, in CI) when none answers."""
    try:
        return asyncio.run(_engine_version())
    except (aiodocker.DockerError, OSError, ValueError, TimeoutError) as exc:
        _unavailable(f"no Docker engine answers ({type(exc).__name__}: {exc})")


@pytest.fixture(scope="session")
def pilothouse_image(docker_engine: dict[str, Any]) -> str:
    """The project's image, built (or found up to date in the caches) once per session."""
    env = {**os.environ, "IMAGE": IMAGE, "PIP": str(Path(sys.executable).with_name("pip"))}
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(ROOT / "tools" / "docker_image.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"tools/docker_image.sh failed:\n{result.stderr[-4000:]}", pytrace=False)
    print(f"\nimage {IMAGE} built in {time.monotonic() - started:.1f} s")
    return IMAGE


@pytest.fixture(scope="session")
def docker_compose(docker_engine: dict[str, Any]) -> list[str]:
    """The compose command; skip (or fail, in CI) when neither flavour is installed."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if plugin.returncode == 0:
        return ["docker", "compose"]
    _unavailable("neither docker-compose nor the docker compose plugin is installed")


@pytest.fixture
async def docker(docker_engine: dict[str, Any]) -> AsyncIterator[aiodocker.Docker]:
    """An aiodocker client bound to the test's event loop."""
    async with aiodocker.Docker() as client:
        yield client


@contextlib.asynccontextmanager
async def container(
    client: aiodocker.Docker, config: dict[str, Any]
) -> AsyncIterator[DockerContainer]:
    """A created (not started) container; removed with its anonymous volumes afterwards."""
    labels = {**config.get("Labels", {}), LABEL: os.environ.get("PYTEST_CURRENT_TEST", "")}
    name = f"pilothouse-test-{uuid.uuid4().hex[:12]}"
    created = await client.containers.create({**config, "Labels": labels}, name=name)
    try:
        yield created
    finally:
        await created.delete(force=True, v=True)


def tar_directory(source: Path, prefix: str, *, uid: int, gid: int) -> bytes:
    """``source`` as a tar archive under ``prefix/``, owned by ``uid:gid`` (for put_archive)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        parts = Path(prefix).parts
        for depth in range(1, len(parts)):
            archive.addfile(_directory_entry("/".join(parts[:depth]), uid, gid))

        def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
            return info

        archive.add(source, arcname=prefix, filter=owned)
    return buffer.getvalue()


def _directory_entry(name: str, uid: int, gid: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o750, uid, gid
    return info


async def wait_healthy(target: DockerContainer, timeout: float = 60.0) -> dict[str, Any]:
    """Wait for the engine to call ``target`` healthy; fail with its checks and log if not."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        state = (await target.show())["State"]
        health = state.get("Health") or {}
        if health.get("Status") == "healthy":
            return dict(state)
        if not state["Running"] or health.get("Status") == "unhealthy" or loop.time() > deadline:
            logs = "".join(await target.log(stdout=True, stderr=True, tail=30))
            raise AssertionError(
                f"container not healthy: status {state['Status']}, exit {state['ExitCode']}, "
                f"health {health}\n--- log ---\n{logs}"
            )
        await asyncio.sleep(0.2)


async def filesystem_changes(client: aiodocker.Docker, target: DockerContainer) -> list[str]:
    """``docker diff``: the paths the container changed outside its volumes."""
    # aiodocker has no call for GET /containers/{id}/changes; this is its own request helper.
    changes = await client._query_json(f"containers/{target.id}/changes")
    return sorted(change["Path"] for change in changes or [])
