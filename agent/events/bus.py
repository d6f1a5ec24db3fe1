"""The event bus: emitting is instant, writing happens in one task, in batches.

Producers call :meth:`EventBus.emit` (synchronous, never blocks, never fails);
the *event writer* task takes what has queued up, up to ``batch_size`` at a
time, and hands it to every sink. A batch a sink refused is kept and tried
again after a restart of the writer, so events are delayed, not lost.
:meth:`EventBus.flush` writes everything still queued; the agent calls it last
at shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from agent.events.sinks import EventSink
from agent.model.events import Event
from agent.model.vocabulary import Source, Status


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
        self._sinks = list(sinks)
        self._batch_size = batch_size
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._pending: list[Event] = []
        self._sinks_done = 0
        self._inflight: asyncio.Future[None] | None = None
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
        """Events emitted and not yet written."""
        return self._queue.qsize() + len(self._pending)

    async def run(self, started: Callable[[], None]) -> None:
        """The event writer: write batches until cancelled."""
        started()
        while True:
            if not self._pending:
                self._pending.append(await self._queue.get())
                self._take_queued()
            await self._write_pending()

    async def flush(self) -> None:
        """Write everything emitted so far."""
        while True:
            if self._sinks_done == 0 and self._inflight is None:
                self._take_queued()  # never grow a batch that is (being) written
            if not self._pending:
                return
            await self._write_pending()

    async def close(self) -> None:
        """Close every sink."""
        for sink in self._sinks:
            await sink.close()

    def _take_queued(self) -> None:
        while len(self._pending) < self._batch_size and not self._queue.empty():
            self._pending.append(self._queue.get_nowait())

    async def _write_pending(self) -> None:
        # Remember which sinks already have the batch, so a retry after one sink
        # failed does not write it twice to the others. A write interrupted by
        # cancellation may still complete (in its thread): it is kept and awaited
        # by the next flush instead of being started again.
        while self._sinks_done < len(self._sinks):
            if self._inflight is None:
                sink = self._sinks[self._sinks_done]
                self._inflight = asyncio.ensure_future(sink.write(self._pending))
            try:
                await asyncio.shield(self._inflight)
            finally:
                if self._inflight.done():
                    self._inflight = None
            self._sinks_done += 1
        self._pending = []
        self._sinks_done = 0
