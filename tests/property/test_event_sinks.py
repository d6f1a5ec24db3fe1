"""Event sinks under failure and shutdown: nothing lost, nothing written twice, no crash hidden.

The agent's sinks are the local JSON-lines log, the log sink, then the extra
sinks a test gives. Shutdown cancels the event writer and flushes what is left;
these tests pin down what that must preserve. Each was a bug found while
writing them (commits named where fixed).
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from helpers import eventually, read_events, running

from pilothouse.agent.errors import CrashLoopError
from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.desired import DesiredDeployment, DesiredState
from pilothouse.foundation.domain.events import Event
from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.plugins.simulated.plugin import SimulatedPlugin

pytestmark = pytest.mark.anyio


class BrokenSink:
    """Refuses the first ``failures`` batches holding an event of type ``at`` (forever if None)."""

    def __init__(self, failures: int | None, *, at: str = "") -> None:
        self.failures = failures
        self.at = at
        self.attempts = 0
        self.events: list[Event] = []

    async def write(self, batch: list[Event]) -> None:
        if not self.at or any(e.type == self.at for e in batch):
            self.attempts += 1
            if self.failures is None or self.attempts <= self.failures:
                raise RuntimeError("sink unreachable")
        self.events.extend(batch)

    async def close(self) -> None:
        pass


class SlowSink:
    """Writes in a worker thread, slowly, as the built-in file sink does."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ids: list[str] = []

    def _append(self, batch: list[Event]) -> None:
        time.sleep(self.seconds)
        self.ids.extend(e.id for e in batch)

    async def write(self, batch: list[Event]) -> None:
        await asyncio.to_thread(self._append, batch)

    async def close(self) -> None:
        pass


class GatedSink:
    """Holds its write of the batch with ``agent.stopping`` until ``release`` is set."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.writing = asyncio.Event()
        self.release = asyncio.Event()

    async def write(self, batch: list[Event]) -> None:
        if any(e.type == "agent.stopping" for e in batch) and not self.release.is_set():
            self.writing.set()
            await self.release.wait()
        self.ids.extend(e.id for e in batch)

    async def close(self) -> None:
        pass


class ReleasingPlugin(SimulatedPlugin):
    """Releases the gated write during shutdown, one loop turn before events are closed."""

    def __init__(self, sink: GatedSink) -> None:
        super().__init__()
        self.sink = sink

    async def stop(self) -> None:
        await self.sink.writing.wait()
        self.sink.release.set()  # the write ends on the next loop turn, and in that same
        await asyncio.sleep(0)  # turn shutdown goes on to cancel the event writer


def events_emitted(agent: Agent) -> float:
    sample = agent.metrics.registry.get_sample_value
    return sum(sample("pilothouse_agent_events_total", {"status": s.value}) or 0.0 for s in Status)


def logged_ids(agent: Agent) -> list[str]:
    return [e["id"] for e in read_events(agent.settings.event_log_path)]


def one_deployment() -> DesiredState:
    return DesiredState(deployments=(DesiredDeployment(id="a", model_package_id="m"),))


async def test_a_sink_that_recovers_gets_every_event_once(make_settings: Any) -> None:
    sink = BrokenSink(failures=2)
    agent = Agent(make_settings(), plugin=SimulatedPlugin(), sinks=[sink])
    async with running(agent):
        agent.apply(one_deployment())
        async with asyncio.timeout(10):
            await agent.wait_settled()
        await eventually(lambda: len(sink.events) > 0)  # it recovered
    ids = [e.id for e in sink.events]
    assert len(ids) == len(set(ids)) == events_emitted(agent)
    assert logged_ids(agent) == ids
    restarts = agent.metrics.registry.get_sample_value(
        "pilothouse_agent_task_restarts_total", {"task": "event writer"}
    )
    assert restarts == 2


async def test_a_batch_a_sink_refused_is_completed_at_shutdown(make_settings: Any) -> None:
    # Found at b293ed3, fixed in 37a1aec: flush grew a half-written batch, so the sinks that
    # already had it (the local log first) never got what was added.
    sink = BrokenSink(failures=1, at="agent.reconciled")
    slow_restart = {"restart_backoff_initial_s": 5, "restart_backoff_max_s": 5}
    agent = Agent(make_settings(supervisor=slow_restart), plugin=SimulatedPlugin(), sinks=[sink])
    async with running(agent) as task:
        agent.apply(one_deployment())
        await eventually(lambda: sink.attempts == 1)  # the writer waits out its restart
        agent.request_stop()
        await asyncio.wait_for(task, 10)
    local = logged_ids(agent)
    assert read_events(agent.settings.event_log_path)[-1]["type"] == "agent.stopped"
    assert len(local) == len(set(local)) == events_emitted(agent)
    assert [e.id for e in sink.events] == local


async def test_a_sink_that_always_fails_ends_serve_with_crash_loop_error(
    make_settings: Any,
) -> None:
    # Found at b293ed3, fixed in a4d31b7: the sink's error escaped serve() from the final
    # flush, and the failed batch, retried at that sink first, kept every later event out
    # of the local log.
    agent = Agent(
        make_settings(supervisor={"crash_loop_failures": 3}),
        plugin=SimulatedPlugin(),
        sinks=[BrokenSink(failures=None)],
    )
    with pytest.raises(CrashLoopError) as raised:
        await asyncio.wait_for(agent.serve(), 10)
    assert raised.value.task == "event writer"
    seen = [e["type"] for e in read_events(agent.settings.event_log_path)]
    assert seen.count("agent.task_failed") == 2
    assert "agent.crash_loop" in seen
    assert seen[-1] == "agent.stopped"


async def test_a_sink_write_cut_by_shutdown_is_awaited_not_repeated(make_settings: Any) -> None:
    # Found at b293ed3, fixed in 39b4944: flush started the cut write again (duplicates, and
    # for the local log a second open file when the cut write was its first).
    sink = SlowSink(0.3)
    agent = Agent(make_settings(), plugin=SimulatedPlugin(), sinks=[sink])
    async with running(agent) as task:
        await eventually(lambda: len(sink.ids) > 0)  # the start-up events are written
        agent.request_stop()  # agent.stopping starts a slow write; shutdown cuts it
        await asyncio.wait_for(task, 10)
    assert len(sink.ids) == len(set(sink.ids)) == events_emitted(agent)


async def test_a_write_that_completes_as_shutdown_cancels_is_not_repeated(
    make_settings: Any,
) -> None:
    # Found after 39b4944, fixed in a4d31b7: a write that had completed when the cancel
    # came was forgotten and written again by the final flush.
    sink = GatedSink()
    agent = Agent(make_settings(), plugin=ReleasingPlugin(sink), sinks=[sink])
    async with running(agent) as task:
        agent.request_stop()
        await asyncio.wait_for(task, 10)
    assert len(sink.ids) == len(set(sink.ids)) == events_emitted(agent)


def read_all(fd: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


async def test_a_stalled_event_log_still_gets_every_event(
    make_settings: Any, tmp_path: Path
) -> None:
    log = tmp_path / "events.fifo"
    os.mkfifo(log)  # a stalled disk: opening the log blocks until a reader comes
    agent = Agent(make_settings(event_log=log), plugin=SimulatedPlugin())
    reader: int | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            async with running(agent) as task:
                await asyncio.sleep(0.05)  # the writer's first write waits in open()
                agent.request_stop()
                await asyncio.sleep(0.1)  # shutdown cut that write; flush waits for it
                reader = os.open(log, os.O_RDONLY | os.O_NONBLOCK)
                await asyncio.wait_for(task, 5)
        finally:
            reader = reader if reader is not None else os.open(log, os.O_RDONLY | os.O_NONBLOCK)
            lines = read_all(reader).splitlines()
            os.close(reader)
    # Found at b293ed3: the cut write was started again, opening the log a second time (a
    # leaked file; fixed in 39b4944); then flush grew the batch of the cut write, so the log
    # lost every event emitted since (fixed in 6702be0).
    leaked = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaked == []
    assert len(lines) == len(set(lines)) == events_emitted(agent)
