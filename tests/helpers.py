"""Helpers for running a real agent inside a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson

from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.vocabulary import Status

STOP_TIMEOUT = 20.0
"""How long the agent may take to stop at the end of a ``running`` block.

Generous for loaded two-core CI machines, yet bounded: a shutdown that hangs is a bug."""


@contextlib.asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[asyncio.Task[None]]:
    """Serve ``agent`` in a task for the duration of the block; stop it cleanly after.

    The stop is part of the test: if ``serve`` raises (during the block or while
    stopping) the error propagates, and a stop that takes longer than
    ``STOP_TIMEOUT`` fails the test with ``AgentDidNotStop``.
    """
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
        await stopped(task)


class AgentDidNotStop(AssertionError):
    """The agent was asked to stop and did not, within ``STOP_TIMEOUT``."""


async def stopped(task: asyncio.Task[None], timeout: float = STOP_TIMEOUT) -> None:
    """Wait for ``task`` (an agent asked to stop) to end; raise what it raised.

    A task still running after ``timeout`` is cancelled (so it leaves nothing
    behind) and the test fails.
    """
    done, _ = await asyncio.wait([task], timeout=timeout)
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise AgentDidNotStop(f"the agent did not stop within {timeout}s of being asked")
    if task.cancelled():
        raise AgentDidNotStop("the agent was cancelled (by the test?) instead of stopping")
    task.result()


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


async def written_through(agent: Agent, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The agent's event log once every event emitted so far is in it.

    A positive "nothing is still on its way": a sentinel event is emitted and
    awaited in the log; the event writer keeps order, so every event emitted
    before it is written by then. Returns the log up to the sentinel (excluded).
    """
    assert agent.bus is not None, "the agent is not serving"
    sentinel = agent.bus.report("test.sentinel", Status.INFORMATIONAL, "written through here")
    path = agent.settings.event_log_path

    def complete() -> list[dict[str, Any]]:  # without a last line still being written
        raw = path.read_bytes() if path.exists() else b""
        return [orjson.loads(line) for line in raw[: raw.rfind(b"\n") + 1].splitlines()]

    await eventually(lambda: any(e["id"] == sentinel.id for e in complete()), timeout)
    logged = complete()
    return logged[: [e["id"] for e in logged].index(sentinel.id)]
