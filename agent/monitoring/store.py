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
counted (the caller reports it), like events in the outbox. The file and the
windows' queue are the foundation's durable queue, as the outbox's are.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from pilothouse.agent.errors import StatisticsError
from pilothouse.foundation.aio.durable_queue import QueueTable, SqliteThread

_SCHEMA = """
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
        self._file = SqliteThread(path, "monitoring-store", error=self._failed)
        self._windows = QueueTable("windows", max_bytes)
        self.dropped = 0
        self.windows_added = asyncio.Event()
        self.notices_added = asyncio.Event()

    async def open(self) -> Stored:
        """Open (or create) the file; what a previous run left."""
        await self._file.open(self._windows.schema + _SCHEMA)
        stored = await self._file.run(self._load)
        if self.size_bytes:
            self.windows_added.set()
        self.notices_added.set()  # there may be notices left: the sender looks
        return stored

    async def record(self, deployment_id: str, windows: list[bytes], cursor: bytes) -> int:
        """Store ``windows`` and the reading they were cut up to, atomically; windows dropped."""
        dropped = await self._file.run(lambda db: self._record(db, deployment_id, windows, cursor))
        if windows:
            self.windows_added.set()
        self.dropped += dropped
        return dropped

    async def forget(self, deployment_id: str) -> None:
        """The deployment is gone: its cursor goes too (its windows still ship)."""
        sql = "DELETE FROM cursors WHERE deployment_id = ?"
        await self._file.run(lambda db: _exec(db, sql, (deployment_id,)))

    async def peek_windows(self, limit: int, max_bytes: int) -> PendingWindows | None:
        """The oldest windows, at most ``limit`` and about ``max_bytes``; None when empty."""
        self.windows_added.clear()  # before looking: a window stored meanwhile sets it again
        rows = await self._file.run(lambda db: self._windows.peek(db, limit, max_bytes))
        if not rows:
            return None
        return PendingWindows([bytes(r[1]) for r in rows], int(rows[-1][0]))

    async def ack_windows(self, pending: PendingWindows) -> None:
        """Forget windows the hub has (or refused for good)."""
        await self._file.run(lambda db: self._windows.delete_upto(db, pending.last_seq))

    async def add_notice(self, deployment_id: str, body: bytes) -> None:
        """Keep a rollback notice until the hub has it."""
        sql = "INSERT INTO notices (deployment_id, body) VALUES (?, ?)"
        await self._file.run(lambda db: _exec(db, sql, (deployment_id, body)))
        self.notices_added.set()

    async def notices(self) -> list[Notice]:
        """Every notice not yet delivered, oldest first."""
        self.notices_added.clear()  # before looking, as for windows
        sql = "SELECT seq, deployment_id, body FROM notices ORDER BY seq"
        rows = await self._file.run(lambda db: list(db.execute(sql)))
        return [Notice(int(seq), str(dep), bytes(body)) for seq, dep, body in rows]

    async def ack_notice(self, notice: Notice) -> None:
        """The hub has this notice (or cannot ever take it)."""
        sql = "DELETE FROM notices WHERE seq = ?"
        await self._file.run(lambda db: _exec(db, sql, (notice.seq,)))

    async def put_override(self, deployment_id: str, body: bytes | None) -> None:
        """Keep (or, with None, drop) the rollback in force for a deployment."""
        if body is None:
            sql, args = "DELETE FROM overrides WHERE deployment_id = ?", (deployment_id,)
            await self._file.run(lambda db: _exec(db, sql, args))
            return
        sql = "INSERT OR REPLACE INTO overrides (deployment_id, body) VALUES (?, ?)"
        await self._file.run(lambda db: _exec(db, sql, (deployment_id, body)))

    @property
    def size_bytes(self) -> int:
        """Bytes of windows waiting."""
        return self._windows.size_bytes

    async def close(self) -> None:
        """Close the file and the thread."""
        await self._file.close()

    def _failed(self, exc: sqlite3.Error) -> StatisticsError:
        return StatisticsError(f"monitoring store {self.path}: {exc}")

    # --- in the store's thread ------------------------------------------------------

    def _load(self, db: sqlite3.Connection) -> Stored:
        self._windows.count(db)
        cursors = {str(k): bytes(v) for k, v in db.execute("SELECT * FROM cursors")}
        overrides = {str(k): bytes(v) for k, v in db.execute("SELECT * FROM overrides")}
        return Stored(cursors, overrides)

    def _record(
        self, db: sqlite3.Connection, deployment_id: str, windows: list[bytes], cursor: bytes
    ) -> int:
        with db:  # the windows and where they end, together or not at all
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT OR REPLACE INTO cursors (deployment_id, body) VALUES (?, ?)",
                (deployment_id, cursor),
            )
            return self._windows.append(db, windows)


def _exec(db: sqlite3.Connection, sql: str, args: tuple[object, ...]) -> None:
    with db:
        db.execute(sql, args)
