"""The event bus: emitting is instant, writing happens in one task, in batches.

Producers call :meth:`EventBus.emit` (synchronous, never blocks, never fails);
the *event writer* task takes what has queued up and hands it to every sink.
Each sink has its own backlog, so a sink that fails (a full disk, say) keeps
its events to retry later while the other sinks go on receiving theirs; the
writer then raises, so the supervisor reports the failure and restarts it.
:meth:`EventBus.flush` writes everything still queued; the agent calls it last
at shutdown.

A sink write interrupted by cancellation may still complete (in its thread):
it is kept and awaited by the next flush instead of being started again, so
no sink receives an event twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pilothouse.agent.events.sinks import EventSink
from pilothouse.foundation.domain.events import Event
from pilothouse.foundation.domain.vocabulary import Source, Status


@dataclass(slots=True)
class _Lane:
    """One sink, the events it still needs, and its write in flight."""

    sink: EventSink
    backlog: list[Event] = field(default_factory=list)
    batch: list[Event] = field(default_factory=list)
    inflight: asyncio.Future[None] | None = None

    async def write(self, batch_size: int) -> None:
        """Write the backlog (a batch at a time) until it is empty, or raise."""
        while self.inflight is not None or self.backlog:
            if self.inflight is None:
                self.batch, self.backlog = self.backlog[:batch_size], self.backlog[batch_size:]
                self.inflight = asyncio.ensure_future(self.sink.write(self.batch))
            try:
                await asyncio.shield(self.inflight)
            finally:
                self._settle()

    def _settle(self) -> None:
        inflight = self.inflight
        if inflight is None or not inflight.done():
            return  # cancelled while writing: the write goes on; flush awaits it
        self.inflight = None
        if inflight.exception() is not None:
            self.backlog = self.batch + self.backlog  # refused: keep it, in order
        self.batch = []


class EventBus:
    """Collects events from every part of the agent and writes them to the sinks."""

    def __init__(
        self,
        prediction_environment_id: str,
        sinks: Sequence[EventSink],
        *,
        batch_size: int = 5000,
        on_emit: Callable[[Event], None] | None = None,
    ) -> None:
        self.prediction_environment_id = prediction_environment_id
        self._lanes = [_Lane(sink) for sink in sinks]
        self._batch_size = batch_size
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._on_emit = on_emit

    def emit(self, event: Event) -> None:
        """Queue ``event`` for writing."""
        self._queue.put_nowait(event)
        if self._on_emit is not None:
            self._on_emit(event)

    def report(
        self,
        type_: str,
        status: Status,
        message: str,
        *,
        deployment_id: str | None = None,
        data: dict[str, Any] | None = None,
        source: Source = Source.AGENT,
    ) -> Event:
        """Make an event of this agent's PE, emit it, and return it."""
        event = Event(
            type=type_,
            status=status,
            message=message,
            prediction_environment_id=self.prediction_environment_id,
            source=source,
            deployment_id=deployment_id,
            data=data or {},
        )
        self.emit(event)
        return event

    @property
    def depth(self) -> int:
        """Events emitted and not yet written to every sink."""
        behind = max((len(lane.backlog) + len(lane.batch) for lane in self._lanes), default=0)
        return self._queue.qsize() + behind

    async def run(self, started: Callable[[], None]) -> None:
        """The event writer: write batches until cancelled."""
        started()
        while True:
            if not any(lane.backlog or lane.inflight for lane in self._lanes):
                self._distribute([await self._queue.get()])
            self._distribute(self._take_queued())
            await self._write_all()

    async def flush(self) -> None:
        """Write everything emitted so far; raise the first sink error after trying all."""
        while True:
            self._distribute(self._take_queued())
            if not any(lane.backlog or lane.inflight for lane in self._lanes):
                return
            await self._write_all()

    async def close(self) -> None:
        """Close every sink."""
        for lane in self._lanes:
            await lane.sink.close()

    def _take_queued(self) -> list[Event]:
        taken = []
        while not self._queue.empty():
            taken.append(self._queue.get_nowait())
        return taken

    def _distribute(self, events: list[Event]) -> None:
        if events:
            for lane in self._lanes:
                lane.backlog.extend(events)

    async def _write_all(self) -> None:
        errors: list[Exception] = []
        for lane in self._lanes:
            try:
                await lane.write(self._batch_size)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
