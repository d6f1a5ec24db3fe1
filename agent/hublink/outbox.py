"""The durable event outbox: events wait here, on disk, until the hub has them.

The event bus writes every batch here first (this class is an event sink); the
shipper reads the oldest batch, posts it, and deletes it only once the hub has
answered. An agent that crashes or a hub that is down for an hour loses
nothing: the hub ingests by event id, so a batch posted twice is stored once.

Storage is a SQLite file (WAL, ``synchronous=FULL``) used from one dedicated
thread, never from the event loop. The outbox is bounded by
``outbox_max_bytes``: at 80 % an ``agent.outbox_near_full`` event warns; past
the bound the oldest events are dropped, counted, and reported.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from pilothouse.foundation.domain.events import Event

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL);
"""


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
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._db: sqlite3.Connection | None = None
        self._bytes = 0
        self._warned = False
        self.dropped = 0
        self.appended = asyncio.Event()

    async def open(self) -> None:
        """Open (or create) the file and count what waits in it."""
        self._bytes = await self._run(self._open)
        if self._bytes:
            self.appended.set()

    async def write(self, batch: list[Event]) -> None:
        """Store ``batch`` durably (the event-sink interface)."""
        bodies = [orjson.dumps(e.to_dict()) for e in batch]
        size = sum(len(b) for b in bodies)
        dropped = await self._run(lambda: self._append(bodies, size))
        self.appended.set()
        self._report_pressure(dropped)

    async def peek(self, limit: int) -> Pending | None:
        """The oldest ``limit`` events, or None when the outbox is empty."""
        rows = await self._run(lambda: self._peek(limit))
        if not rows:
            self.appended.clear()
            return None
        return Pending([bytes(r[1]) for r in rows], rows[-1][0])

    async def ack(self, pending: Pending) -> None:
        """Forget the events of ``pending``: the hub has them."""
        await self._run(lambda: self._delete_upto(pending.last_seq))

    @property
    def size_bytes(self) -> int:
        """Bytes of events waiting."""
        return self._bytes

    async def close(self) -> None:
        """Close the file and the thread."""
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._thread.shutdown(wait=True)

    # --- in the outbox thread ---------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        total = db.execute("SELECT COALESCE(SUM(length(body)), 0) FROM outbox").fetchone()[0]
        return int(total)

    def _append(self, bodies: list[bytes], size: int) -> int:
        assert self._db is not None
        dropped = 0
        with self._db:  # one transaction: all of the batch or none
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT INTO outbox (body) VALUES (?)", [(b,) for b in bodies])
            self._bytes += size
            while self._bytes > self._max:
                dropped += self._drop_oldest(max(1, len(bodies)))
        return dropped

    def _drop_oldest(self, n: int) -> int:
        assert self._db is not None
        rows = self._db.execute(
            "SELECT seq, length(body) FROM outbox ORDER BY seq LIMIT ?", (n,)
        ).fetchall()
        if not rows:
            self._bytes = 0
            return 0
        self._db.execute("DELETE FROM outbox WHERE seq <= ?", (rows[-1][0],))
        self._bytes -= sum(r[1] for r in rows)
        return len(rows)

    def _peek(self, limit: int) -> list[tuple[int, bytes]]:
        assert self._db is not None
        return self._db.execute(
            "SELECT seq, body FROM outbox ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()

    def _delete_upto(self, seq: int) -> None:
        assert self._db is not None
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            size = self._db.execute(
                "SELECT COALESCE(SUM(length(body)), 0) FROM outbox WHERE seq <= ?", (seq,)
            ).fetchone()[0]
            self._db.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))
        self._bytes = max(0, self._bytes - int(size))

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
        near = self._bytes >= 0.8 * self._max
        if near and not self._warned:
            self._on_pressure(
                "agent.outbox_near_full", {"bytes": self._bytes, "max_bytes": self._max}
            )
        self._warned = near
