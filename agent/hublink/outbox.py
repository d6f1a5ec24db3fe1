"""The durable event outbox: events wait here, on disk, until the hub has them.

The event bus writes every batch here first (this class is an event sink); the
shipper reads the oldest batch, posts it, and deletes it only once the hub has
answered. An agent that crashes or a hub that is down for an hour loses
nothing: the hub ingests by event id, so a batch posted twice is stored once.

Storage is a SQLite file (WAL, ``synchronous=FULL``) used from one dedicated
thread, never from the event loop: the foundation's durable queue, which the
monitoring store uses too. The outbox is bounded by
``outbox_max_bytes``: at 80 % an ``agent.outbox_near_full`` event warns; past
the bound the oldest events are dropped, counted, and reported.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pilothouse.foundation.aio.durable_queue import QueueTable, SqliteThread
from pilothouse.foundation.domain.events import Event


@dataclass(frozen=True, slots=True)
class Pending:
    """Events read from the outbox, oldest first; ``last_seq`` acknowledges them."""

    bodies: list[bytes]
    last_seq: int


class Outbox:
    """A FIFO of serialized events on disk."""

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        *,
        on_pressure: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.path = path
        self._max = max_bytes
        self._on_pressure = on_pressure
        self._file = SqliteThread(path, "outbox")
        self._events = QueueTable("outbox", max_bytes)
        self._warned = False
        self.dropped = 0
        self.appended = asyncio.Event()

    async def open(self) -> None:
        """Open (or create) the file and count what waits in it."""
        await self._file.open(self._events.schema)
        if await self._file.run(self._events.count):
            self.appended.set()

    async def write(self, batch: list[Event]) -> None:
        """Store ``batch`` durably (the event-sink interface)."""
        bodies = [orjson.dumps(e.to_dict()) for e in batch]
        dropped = await self._file.run(lambda db: self._append(db, bodies))
        self.appended.set()
        self._report_pressure(dropped)

    async def peek(self, limit: int) -> Pending | None:
        """The oldest ``limit`` events, or None when the outbox is empty."""
        rows = await self._file.run(lambda db: self._events.peek(db, limit))
        if not rows:
            self.appended.clear()
            return None
        return Pending([bytes(r[1]) for r in rows], rows[-1][0])

    async def ack(self, pending: Pending) -> None:
        """Forget the events of ``pending``: the hub has them."""
        await self._file.run(lambda db: self._events.delete_upto(db, pending.last_seq))

    @property
    def size_bytes(self) -> int:
        """Bytes of events waiting."""
        return self._events.size_bytes

    async def close(self) -> None:
        """Close the file and the thread."""
        await self._file.close()

    # --- in the outbox thread ---------------------------------------------------

    def _append(self, db: sqlite3.Connection, bodies: list[bytes]) -> int:
        with db:  # one transaction: all of the batch or none
            db.execute("BEGIN IMMEDIATE")
            # Past the bound the oldest go a batch's worth at a time.
            return self._events.append(db, bodies, drop_at_once=len(bodies))

    # --- on the loop ------------------------------------------------------------------

    def _report_pressure(self, dropped: int) -> None:
        if self._on_pressure is None:
            return
        if dropped:
            self.dropped += dropped
            self._on_pressure(
                "agent.outbox_overflow",
                {"dropped": dropped, "dropped_total": self.dropped, "max_bytes": self._max},
            )
        near = self.size_bytes >= 0.8 * self._max
        if near and not self._warned:
            self._on_pressure(
                "agent.outbox_near_full", {"bytes": self.size_bytes, "max_bytes": self._max}
            )
        self._warned = near
