"""Where events are written: the local JSON-lines log and the structured log.

Sinks receive batches from the event writer. File I/O happens in a worker
thread, never on the event loop. A sink raises on failure; the writer keeps
the batch and tries again, so a full disk delays events instead of losing them.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import IO, Protocol

import orjson

from pilothouse.foundation.domain.events import Event
from pilothouse.foundation.domain.vocabulary import Status


class EventSink(Protocol):
    """Something that keeps events."""

    async def write(self, batch: list[Event]) -> None:
        """Keep every event of ``batch``, in order, or raise."""

    async def close(self) -> None:
        """Release files or connections."""


class JsonLinesLog:
    """An append-only file with one JSON event per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    async def write(self, batch: list[Event]) -> None:
        """Append ``batch`` and flush it to the operating system."""
        payload = b"".join(orjson.dumps(e.to_dict()) + b"\n" for e in batch)
        await asyncio.to_thread(self._append, payload)

    def _append(self, payload: bytes) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
        self._file.write(payload)
        self._file.flush()

    async def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            await asyncio.to_thread(self._file.close)
            self._file = None


_LEVELS = {
    Status.FAILING: logging.ERROR,
    Status.AT_RISK: logging.WARNING,
}


class LogSink:
    """Writes each event to the structured log (its own logger, level by status)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("pilothouse.events")

    async def write(self, batch: list[Event]) -> None:
        """Log every event whose level is enabled."""
        for event in batch:
            level = _LEVELS.get(event.status, logging.INFO)
            if self._log.isEnabledFor(level):
                self._log.log(
                    level,
                    "%s %s: %s",
                    event.type,
                    event.status.value,
                    event.message,
                    extra={
                        "deployment_id": event.deployment_id,
                        "event_id": event.id,
                        "event_type": event.type,
                        "status": event.status.value,
                    },
                )

    async def close(self) -> None:
        """Nothing to release."""
