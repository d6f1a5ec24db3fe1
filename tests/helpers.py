"""Helpers for running a real agent inside a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson

from pilothouse.agent.runtime import Agent


@contextlib.asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[asyncio.Task[None]]:
    """Serve ``agent`` in a task for the duration of the block; stop it cleanly after."""
    task = asyncio.create_task(agent.serve(), name="agent under test")
    ready = asyncio.create_task(agent.wait_ready())
    done, _ = await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        await asyncio.gather(ready, return_exceptions=True)
        task.result()  # raises why it could not start
    try:
        yield task
    finally:
        agent.request_stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(task), 10)


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every event of a JSON-lines event log."""
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds, polling; fail the test after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)
