"""A durable queue drained to a sink: what the agent's event outbox and monitoring store share.

Both keep byte strings on disk until a peer has them, and a shipper posts the
oldest first. The three halves they have in common live here, once:

- :class:`SqliteThread`: one SQLite file (WAL, ``synchronous=FULL``) used
  from one dedicated thread, never from the event loop;
- :class:`QueueTable`: a FIFO table ``(seq, body)`` whose bytes are counted
  as they come and go, and kept within a bound by dropping the oldest;
- :func:`drain`: the shipper's loop — deliver while there is something, wait
  for more when there is not, back off while the sink is out of reach.

What differs stays with each owner: what else its file holds, when it marks
"more to deliver", what a delivery is and what it tells of an outage.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn, TypeVar

T = TypeVar("T")


class SqliteThread:
    """One SQLite connection, used only from its own thread."""

    def __init__(
        self,
        path: Path,
        thread_name: str,
        *,
        error: Callable[[sqlite3.Error], Exception] | None = None,
    ) -> None:
        """``error`` turns SQLite's errors into the owner's (None: they pass as they are)."""
        self.path = path
        self._error = error
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._db: sqlite3.Connection | None = None

    async def open(self, schema: str) -> None:
        """Open (or create) the file, durable before fast, and create ``schema``."""
        await self._submit(lambda: self._open(schema))

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the connection, in the connection's thread."""

        def call() -> T:
            if self._db is None:
                raise RuntimeError(f"{self.path} is not open")
            return fn(self._db)

        return await self._submit(call)

    async def close(self) -> None:
        """Close the file and the thread."""
        if self._db is not None:
            await self._submit(self._db.close)
            self._db = None
        self._thread.shutdown(wait=True)

    async def _submit(self, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, fn)
        except sqlite3.Error as exc:
            if self._error is None:
                raise
            raise self._error(exc) from exc

    def _open(self, schema: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(schema)


class QueueTable:
    """A FIFO of byte strings in one table, and the bytes it holds, within ``max_bytes``.

    Every method but :attr:`size_bytes` runs in the connection's thread
    (through :meth:`SqliteThread.run`). The count is kept in memory, so the
    owner can tell its size without a query; :meth:`count` sets it from the
    file on open.
    """

    def __init__(self, name: str, max_bytes: int) -> None:
        if not name.isidentifier():
            raise ValueError(f"a queue table is named by an identifier, not {name!r}")
        self.name = name
        self.max_bytes = max_bytes
        self._bytes = 0

    @property
    def schema(self) -> str:
        """The table, for the file's schema script."""
        return (
            f"CREATE TABLE IF NOT EXISTS {self.name} "
            "(seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL);\n"
        )

    @property
    def size_bytes(self) -> int:
        """Bytes waiting in the table."""
        return self._bytes

    def count(self, db: sqlite3.Connection) -> int:
        """Count what waits in the table (on open); the bytes."""
        sql = f"SELECT COALESCE(SUM(length(body)), 0) FROM {self.name}"
        self._bytes = int(db.execute(sql).fetchone()[0])
        return self._bytes

    def append(self, db: sqlite3.Connection, bodies: list[bytes], drop_at_once: int = 1) -> int:
        """Add ``bodies`` in the caller's transaction; past the bound drop the oldest.

        The oldest go ``drop_at_once`` rows at a time until the table fits again;
        returns how many rows were dropped.
        """
        db.executemany(f"INSERT INTO {self.name} (body) VALUES (?)", [(b,) for b in bodies])
        self._bytes += sum(len(b) for b in bodies)
        dropped = 0
        while self._bytes > self.max_bytes:
            gone = self._drop_oldest(db, max(1, drop_at_once))
            if not gone:
                self._bytes = 0
                break
            dropped += gone
        return dropped

    def peek(
        self, db: sqlite3.Connection, limit: int, max_bytes: int | None = None
    ) -> list[tuple[int, bytes]]:
        """The oldest rows ``(seq, body)``: at most ``limit``, and about ``max_bytes``.

        The first row is always taken, however large, so that no body blocks the queue.
        """
        sql = f"SELECT seq, body FROM {self.name} ORDER BY seq LIMIT ?"
        rows: list[tuple[int, bytes]] = []
        size = 0
        for seq, body in db.execute(sql, (limit,)):
            if rows and max_bytes is not None and size + len(body) > max_bytes:
                break
            rows.append((seq, body))
            size += len(body)
        return rows

    def delete_upto(self, db: sqlite3.Connection, seq: int) -> None:
        """Forget every row up to ``seq``, in a transaction of its own."""
        with db:
            db.execute("BEGIN IMMEDIATE")
            size = db.execute(
                f"SELECT COALESCE(SUM(length(body)), 0) FROM {self.name} WHERE seq <= ?",
                (seq,),
            ).fetchone()[0]
            db.execute(f"DELETE FROM {self.name} WHERE seq <= ?", (seq,))
        self._bytes = max(0, self._bytes - int(size))

    def _drop_oldest(self, db: sqlite3.Connection, n: int) -> int:
        rows = db.execute(
            f"SELECT seq, length(body) FROM {self.name} ORDER BY seq LIMIT ?",
            (n,),
        ).fetchall()
        if not rows:
            return 0
        db.execute(f"DELETE FROM {self.name} WHERE seq <= ?", (rows[-1][0],))
        self._bytes -= sum(int(r[1]) for r in rows)
        return len(rows)


async def drain(
    deliver: Callable[[], Awaitable[bool]],
    more: asyncio.Event,
    retry_delay: Callable[[int], float],
    *,
    retry_on: tuple[type[Exception], ...],
    on_retry: Callable[[Exception], None],
) -> NoReturn:
    """Deliver until cancelled: the shipper's loop over a durable queue.

    ``deliver()`` sends the oldest batch and says whether there was one; while
    it does, it is called again at once. When the queue is empty the loop
    waits for ``more`` (the owner sets it when something is stored, and
    clears it when it finds the queue empty). A ``retry_on`` error means the
    sink is out of reach: ``on_retry`` is told, and the loop sleeps
    ``retry_delay(attempt)`` before trying again, ``attempt`` counting the
    failures since the last delivery. Any other error ends the loop.
    """
    attempt = 0
    while True:
        try:
            if await deliver():
                attempt = 0
                continue
            await more.wait()
        except retry_on as exc:
            on_retry(exc)
            await asyncio.sleep(retry_delay(attempt))
            attempt += 1
