"""The monitoring store: statistics windows and rollback notices wait here for the hub.

A sibling of the event outbox (``<state_dir>/monitoring.db``, SQLite in WAL
mode with ``synchronous=FULL``, used from one dedicated thread, never from the
event loop). It holds

- ``windows``: statistics windows not yet accepted by the hub, oldest first;
- ``cursors``: per deployment, the server reading the last windows were cut
  from — written *in the same transaction* as those windows, so after a crash
  the next window starts exactly where the stored ones end (nothing counted
  twice, nothing lost; the hub ingests by window id for the rest);
- ``notices``: rollbacks the hub has not yet recorded
  (``POST /api/v1/deployments/{id}/rollback``), kept across restarts;
- ``overrides``: the rollbacks in force, so that a restarted agent never
  re-applies a package it rolled back (see :mod:`.rollback`).

Windows are bounded by ``max_bytes``: past it the oldest are dropped and
counted (the caller reports it), like events in the outbox.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pilothouse.agent.errors import StatisticsError

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS windows (seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS cursors (deployment_id TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS notices (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, deployment_id TEXT NOT NULL, body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS overrides (deployment_id TEXT PRIMARY KEY, body BLOB NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class PendingWindows:
    """Windows read from the store, oldest first; ``last_seq`` acknowledges them."""

    bodies: list[bytes]
    last_seq: int


@dataclass(frozen=True, slots=True)
class Notice:
    """One rollback the hub has to be told of."""

    seq: int
    deployment_id: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Stored:
    """What a previous run left: cursors and overrides by deployment."""

    cursors: dict[str, bytes]
    overrides: dict[str, bytes]


class MonitoringStore:
    """Durable queues of the statistics relay and the rollback guard."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self._max = max_bytes
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitoring-store")
        self._db: sqlite3.Connection | None = None
        self._bytes = 0
        self.dropped = 0
        self.windows_added = asyncio.Event()
        self.notices_added = asyncio.Event()

    async def open(self) -> Stored:
        """Open (or create) the file; what a previous run left."""
        stored = await self._run(self._open)
        if self._bytes:
            self.windows_added.set()
        self.notices_added.set()  # there may be notices left: the sender looks
        return stored

    async def record(self, deployment_id: str, windows: list[bytes], cursor: bytes) -> int:
        """Store ``windows`` and the reading they were cut up to, atomically; windows dropped."""
        dropped = await self._run(lambda: self._record(deployment_id, windows, cursor))
        if windows:
            self.windows_added.set()
        self.dropped += dropped
        return dropped

    async def forget(self, deployment_id: str) -> None:
        """The deployment is gone: its cursor goes too (its windows still ship)."""
        await self._run(lambda: self._exec("DELETE FROM cursors WHERE deployment_id = ?",
                                           (deployment_id,)))  # fmt: skip

    async def peek_windows(self, limit: int, max_bytes: int) -> PendingWindows | None:
        """The oldest windows, at most ``limit`` and about ``max_bytes``; None when empty."""
        self.windows_added.clear()  # before looking: a window stored meanwhile sets it again
        rows = await self._run(lambda: self._peek(limit, max_bytes))
        if not rows:
            return None
        return PendingWindows([bytes(r[1]) for r in rows], int(rows[-1][0]))

    async def ack_windows(self, pending: PendingWindows) -> None:
        """Forget windows the hub has (or refused for good)."""
        await self._run(lambda: self._delete_windows(pending.last_seq))

    async def add_notice(self, deployment_id: str, body: bytes) -> None:
        """Keep a rollback notice until the hub has it."""
        sql = "INSERT INTO notices (deployment_id, body) VALUES (?, ?)"
        await self._run(lambda: self._exec(sql, (deployment_id, body)))
        self.notices_added.set()

    async def notices(self) -> list[Notice]:
        """Every notice not yet delivered, oldest first."""
        self.notices_added.clear()  # before looking, as for windows
        rows = await self._run(
            lambda: self._query("SELECT seq, deployment_id, body FROM notices ORDER BY seq")
        )
        return [Notice(int(seq), str(dep), bytes(body)) for seq, dep, body in rows]

    async def ack_notice(self, notice: Notice) -> None:
        """The hub has this notice (or cannot ever take it)."""
        await self._run(lambda: self._exec("DELETE FROM notices WHERE seq = ?", (notice.seq,)))

    async def put_override(self, deployment_id: str, body: bytes | None) -> None:
        """Keep (or, with None, drop) the rollback in force for a deployment."""
        if body is None:
            sql, args = "DELETE FROM overrides WHERE deployment_id = ?", (deployment_id,)
            await self._run(lambda: self._exec(sql, args))
            return
        sql = "INSERT OR REPLACE INTO overrides (deployment_id, body) VALUES (?, ?)"
        await self._run(lambda: self._exec(sql, (deployment_id, body)))

    @property
    def size_bytes(self) -> int:
        """Bytes of windows waiting."""
        return self._bytes

    async def close(self) -> None:
        """Close the file and the thread."""
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._thread.shutdown(wait=True)

    # --- in the store's thread ------------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, fn)
        except sqlite3.Error as exc:
            raise StatisticsError(f"monitoring store {self.path}: {exc}") from exc

    def _open(self) -> Stored:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        self._bytes = int(
            db.execute("SELECT COALESCE(SUM(length(body)), 0) FROM windows").fetchone()[0]
        )
        cursors = {str(k): bytes(v) for k, v in db.execute("SELECT * FROM cursors")}
        overrides = {str(k): bytes(v) for k, v in db.execute("SELECT * FROM overrides")}
        return Stored(cursors, overrides)

    def _record(self, deployment_id: str, windows: list[bytes], cursor: bytes) -> int:
        db = self._db
        assert db is not None
        dropped = 0
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT INTO windows (body) VALUES (?)", [(w,) for w in windows])
            db.execute(
                "INSERT OR REPLACE INTO cursors (deployment_id, body) VALUES (?, ?)",
                (deployment_id, cursor),
            )
            self._bytes += sum(len(w) for w in windows)
            while self._bytes > self._max:
                row = db.execute("SELECT seq, length(body) FROM windows ORDER BY seq LIMIT 1")
                first = row.fetchone()
                if first is None:
                    self._bytes = 0
                    break
                db.execute("DELETE FROM windows WHERE seq = ?", (first[0],))
                self._bytes -= int(first[1])
                dropped += 1
        return dropped

    def _peek(self, limit: int, max_bytes: int) -> list[tuple[int, bytes]]:
        assert self._db is not None
        rows: list[tuple[int, bytes]] = []
        size = 0
        for seq, body in self._db.execute(
            "SELECT seq, body FROM windows ORDER BY seq LIMIT ?", (limit,)
        ):
            if rows and size + len(body) > max_bytes:
                break
            rows.append((seq, body))
            size += len(body)
        return rows

    def _delete_windows(self, seq: int) -> None:
        db = self._db
        assert db is not None
        with db:
            db.execute("BEGIN IMMEDIATE")
            size = db.execute(
                "SELECT COALESCE(SUM(length(body)), 0) FROM windows WHERE seq <= ?", (seq,)
            ).fetchone()[0]
            db.execute("DELETE FROM windows WHERE seq <= ?", (seq,))
        self._bytes = max(0, self._bytes - int(size))

    def _exec(self, sql: str, args: tuple[object, ...]) -> None:
        assert self._db is not None
        with self._db:
            self._db.execute(sql, args)

    def _query(self, sql: str) -> list[tuple[int, str, bytes]]:
        assert self._db is not None
        return list(self._db.execute(sql))
