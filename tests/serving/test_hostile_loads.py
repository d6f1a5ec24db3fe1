"""A load can neither hang the server nor block later loads of the same deployment.

A FIFO given as the archive used to hang the loader thread in ``open()`` while
holding the deployment's lock: that PUT never answered, nor did any later PUT
of the deployment. Now a non-regular file is refused at once, and any load
(here, a model whose ``__init__`` sleeps) is abandoned after ``load_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import pytest

from pilothouse.modelpkg import build_package
from tests.modelpkg.factory import python_package
from tests.serving.harness import put, server

pytestmark = pytest.mark.anyio


def release_fifo(path: Path) -> None:
    """Unblock a reader stuck in open() (so a failing run ends instead of hanging)."""
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


async def test_a_fifo_archive_is_refused_and_the_deployment_stays_loadable(
    tmp_path: Path, iris: dict[str, Path]
) -> None:
    fifo = tmp_path / "pipe.tar.gz"
    os.mkfifo(fifo)
    async with server(tmp_path) as client:
        try:
            async with asyncio.timeout(10):
                resp = await put(client, "iris", archive=fifo)
        finally:
            release_fifo(fifo)  # before the server stops: a stuck loader would block its stop
        doc = await resp.json()
        assert resp.status == 422, doc
        assert "a FIFO, not a regular file" in doc["error"]
        assert doc["old_model_in_use"] is False
        _, archive = build_package(iris["v1"], tmp_path / "v1.tar.gz")
        async with asyncio.timeout(30):
            resp = await put(client, "iris", archive=archive)
        assert resp.status == 201, await resp.text()


async def test_a_hanging_load_is_abandoned_and_the_next_change_proceeds(
    tmp_path: Path, iris: dict[str, Path]
) -> None:
    slow = python_package(tmp_path / "slow", init="time.sleep(4)")
    async with server(tmp_path, load_timeout_s=0.5) as client:
        resp = await put(client, "iris", model_package_id="iris-v1", package_dir=iris["v1"])
        assert resp.status == 201, await resp.text()
        began = time.monotonic()
        resp = await put(client, "iris", model_package_id="slow", package_dir=slow)
        doc = await resp.json()
        assert resp.status == 422, doc
        assert time.monotonic() - began < 3, "the PUT waited for the hung load"
        assert "load_timeout_s" in doc["error"] and doc["error_type"] == "LoadTimeoutError"
        assert doc["old_model_in_use"] is True and doc["model_package_id"] == "iris-v1"
        served = await client.get("/v2/models/iris")
        assert (await served.json())["versions"] == ["iris-v1"]
        # The deployment's lock is free: the next change does not wait for the hung thread.
        began = time.monotonic()
        resp = await put(client, "iris", model_package_id="rules", package_dir=iris["rules"])
        assert resp.status == 200, await resp.text()
        assert time.monotonic() - began < 3
