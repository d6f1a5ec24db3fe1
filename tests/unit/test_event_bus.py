"""The event bus and its sinks: order, flushing, retrying a refused batch, log levels."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from helpers import eventually, read_events

from pilothouse.agent.events.bus import EventBus
from pilothouse.agent.events.sinks import JsonLinesLog, LogSink
from pilothouse.foundation.domain.events import Event
from pilothouse.foundation.domain.vocabulary import Source, Status

pytestmark = pytest.mark.anyio


class RecordingSink:
    """Keeps every batch it is handed; refuses the first ``failures`` writes."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.batches: list[list[str]] = []
        self.attempts = 0
        self.closed = False

    async def write(self, batch: list[Event]) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise OSError("disk full")
        self.batches.append([e.message for e in batch])

    async def close(self) -> None:
        self.closed = True

    @property
    def messages(self) -> list[str]:
        return [m for batch in self.batches for m in batch]


def report(bus: EventBus, *messages: str) -> None:
    for message in messages:
        bus.report("test.event", Status.INFORMATIONAL, message)


async def run_writer(bus: EventBus) -> asyncio.Task[None]:
    started = asyncio.Event()
    task = asyncio.ensure_future(bus.run(started.set))
    await asyncio.wait_for(started.wait(), 10)
    return task


async def test_writer_appends_events_in_order_to_the_json_lines_log(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "events.jsonl"
    log = JsonLinesLog(path)
    bus = EventBus("pe-1", [log], batch_size=7)
    writer = await run_writer(bus)
    messages = [f"event {n}" for n in range(50)]
    report(bus, *messages)
    await eventually(lambda: len(read_events(path)) == 50 and bus.depth == 0)
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    await bus.close()
    events = read_events(path)
    assert [e["message"] for e in events] == messages
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert {e["prediction_environment_id"] for e in events} == {"pe-1"}


async def test_flush_writes_everything_emitted(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    bus = EventBus("pe-1", [JsonLinesLog(path)], batch_size=3)
    report(bus, *(f"m{n}" for n in range(10)))
    assert bus.depth == 10
    await bus.flush()
    await bus.close()
    assert bus.depth == 0
    assert [e["message"] for e in read_events(path)] == [f"m{n}" for n in range(10)]


async def test_log_file_is_appended_across_reopenings(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    for round_ in range(2):
        bus = EventBus("pe-1", [JsonLinesLog(path)])
        report(bus, f"round {round_}")
        await bus.flush()
        await bus.close()
    assert [e["message"] for e in read_events(path)] == ["round 0", "round 1"]


async def test_report_fills_in_the_event_and_notifies_on_emit() -> None:
    seen: list[Event] = []
    bus = EventBus("pe-7", [], on_emit=seen.append)
    event = bus.report(
        "deployment.ready",
        Status.PASSING,
        "up",
        deployment_id="dep-1",
        data={"a": 1},
        source=Source.USER,
    )
    assert seen == [event]
    assert (event.prediction_environment_id, event.deployment_id) == ("pe-7", "dep-1")
    assert (event.source, event.data) == (Source.USER, {"a": 1})
    await bus.flush()


async def test_refused_batch_is_retried_by_the_restarted_writer_without_duplicates() -> None:
    first, second = RecordingSink(), RecordingSink(failures=1)
    bus = EventBus("pe-1", [first, second])
    report(bus, "a", "b", "c")
    writer = await run_writer(bus)
    with pytest.raises(OSError, match="disk full"):
        await asyncio.wait_for(writer, 10)
    assert first.batches == [["a", "b", "c"]]
    assert second.batches == []
    assert bus.depth == 3  # kept, not lost
    report(bus, "d")  # emitted while the writer is down
    writer = await run_writer(bus)  # as the supervisor restarts it
    await eventually(lambda: second.messages == ["a", "b", "c", "d"] and bus.depth == 0)
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    assert first.batches == [["a", "b", "c"], ["d"]]
    # The refused backlog and what came after may go in one batch: in order, once.
    assert second.messages == ["a", "b", "c", "d"]


async def test_flush_retries_a_refused_batch_without_duplicates() -> None:
    first, second = RecordingSink(), RecordingSink(failures=1)
    bus = EventBus("pe-1", [first, second])
    report(bus, "a", "b")
    with pytest.raises(OSError):
        await bus.flush()
    await bus.flush()
    assert first.messages == second.messages == ["a", "b"]
    assert first.attempts == 1 and second.attempts == 2


async def test_events_emitted_after_a_refused_write_reach_every_sink() -> None:
    first, second = RecordingSink(), RecordingSink(failures=1)
    bus = EventBus("pe-1", [first, second])
    report(bus, "a", "b")
    with pytest.raises(OSError):
        await bus.flush()
    report(bus, "c")  # e.g. "agent.stopped", emitted just before the final flush
    await bus.flush()
    assert second.messages == ["a", "b", "c"]
    assert first.messages == ["a", "b", "c"]


async def test_close_closes_every_sink() -> None:
    sinks = [RecordingSink(), RecordingSink()]
    bus = EventBus("pe-1", sinks)
    await bus.close()
    assert all(s.closed for s in sinks)


@pytest.mark.parametrize(
    ("status", "level"),
    [
        (Status.FAILING, logging.ERROR),
        (Status.AT_RISK, logging.WARNING),
        (Status.PASSING, logging.INFO),
        (Status.UNKNOWN, logging.INFO),
        (Status.INFORMATIONAL, logging.INFO),
    ],
)
async def test_log_sink_logs_at_the_level_of_the_status(
    caplog: pytest.LogCaptureFixture, status: Status, level: int
) -> None:
    logger = logging.getLogger("pilothouse.test.events")
    event = Event("deployment.health", status, "checked", "pe-1", deployment_id="dep-1")
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        await LogSink(logger).write([event])
    [record] = caplog.records
    assert record.levelno == level
    assert record.getMessage() == f"deployment.health {status.value}: checked"
    assert record.__dict__["deployment_id"] == "dep-1"
    assert record.__dict__["event_id"] == event.id
    assert record.__dict__["status"] == status.value


async def test_log_sink_skips_levels_that_are_disabled(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("pilothouse.test.quiet")
    events = [
        Event("x", s, s.value, "pe-1") for s in (Status.PASSING, Status.AT_RISK, Status.FAILING)
    ]
    with caplog.at_level(logging.WARNING, logger=logger.name):
        await LogSink(logger).write(events)
    assert [r.getMessage() for r in caplog.records] == ["x at_risk: at_risk", "x failing: failing"]


async def test_log_sink_uses_the_events_logger_by_default(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pilothouse.events"):
        await LogSink().write([Event("agent.started", Status.INFORMATIONAL, "hi", "pe-1")])
    assert [r.name for r in caplog.records] == ["pilothouse.events"]
