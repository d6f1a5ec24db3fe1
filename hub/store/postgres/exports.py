"""Event export on PostgreSQL: a server-side cursor per export, rendered lines, chunk by chunk.

An export asks for one chunk at a time (:meth:`Store.scan_events` with the
cursor after the previous chunk). Here the first chunk opens a *scan*: a
connection of its own, a read-only repeatable-read transaction and a
server-side cursor (``DECLARE … CURSOR``) over every matching event, newest
first; each later chunk that continues where the scan stands fetches the next
rows from the same cursor — one snapshot for the whole export, no query run
again, no index descent per chunk. Each line is rendered by PostgreSQL
(``format``), byte for byte as the SQLite backend renders it.

At most :data:`SCANS` scans are open at once (each holds a connection). An
export whose client went away never says so: a scan left idle for
:data:`IDLE_S` is closed, and one that is idle is closed early when a new
export needs its slot. A chunk whose scan was closed — or that asks from a
position no scan stands at — opens a new scan there (keyset: strictly after
``(time, id)``), so closing one never breaks an export.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from pilothouse.hub.api.schemas import ExportFormat
from pilothouse.hub.store.postgres import events
from pilothouse.hub.store.postgres.db import translated
from pilothouse.hub.store.records import Cursor, EventFilter, ExportChunk

log = logging.getLogger("pilothouse.hub.store")

SCANS = 2
"""Exports read at once; more wait for a slot."""
IDLE_S = 60.0
"""A scan not continued for this long is closed (its client went away)."""

# floor division and a non-negative remainder, so times before 1970 format right too
_SECONDS = "((time - ((time % 1000000) + 1000000) % 1000000) / 1000000)"
_FRACTION = "(((time % 1000000) + 1000000) % 1000000)"
_TIME = (
    f"to_char(to_timestamp({_SECONDS}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
    f"CASE WHEN {_FRACTION} <> 0 THEN '.' || lpad({_FRACTION}::text, 6, '0') ELSE '' END || 'Z'"
)
_CSV_LINE = (
    """format(E'%s,%s,%s,%s,%s,%s,%s,"%s","%s"\\n', id, """
    f"{_TIME}, prediction_environment_id, "
    """CASE WHEN deployment_id ~ E'[",\\r\\n]' """
    """THEN '"' || replace(deployment_id, '"', '""') || '"' """
    "ELSE coalesce(deployment_id, '') END, source, type, status, "
    """replace(message, '"', '""'), replace(data, '"', '""'))"""
)
_JSON_LINE = (
    """format(E'{"id":"%s","time":"%s","prediction_environment_id":%s,"deployment_id":%s,"""
    """"source":"%s","type":"%s","status":"%s","message":%s,"data":%s}\\n', id, """
    f"{_TIME}, to_json(prediction_environment_id), coalesce(to_json(deployment_id)::text, "
    "'null'), source, type, status, to_json(message), data)"
)
_LINES = {ExportFormat.CSV: _CSV_LINE, ExportFormat.JSONL: _JSON_LINE}

Key = tuple[Any, ...]


@dataclass(eq=False)
class _Scan:
    """One open export: its connection, transaction and cursor, and where it stands."""

    key: Key
    conn: asyncpg.pool.PoolConnectionProxy[Any]
    transaction: Any
    cursor: Any
    at: Cursor | None = None
    busy: bool = False
    used: float = field(default_factory=time.monotonic)


class Scans:
    """The open scans of one store, and the slots they take."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._open: dict[int, _Scan] = {}
        self._slots = asyncio.Semaphore(SCANS)
        self._ids = itertools.count()
        self._lock = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None

    async def chunk(self, query: EventFilter, fmt: ExportFormat) -> ExportChunk:
        """Up to ``query.limit`` events after ``query.after``, rendered as ``fmt`` lines."""
        key = _key(query, fmt)
        scan_id, scan = await self._continuing(key, query.after) or await self._opened(query, fmt)
        try:
            with translated():
                rows = await scan.cursor.fetch(query.limit)
        except BaseException:
            await self._close(scan_id)
            raise
        scan.busy, scan.used = False, time.monotonic()
        if len(rows) < query.limit:
            await self._close(scan_id)
            return ExportChunk(_joined(rows), len(rows), None)
        scan.at = Cursor(rows[-1][0], rows[-1][1])
        return ExportChunk(_joined(rows), len(rows), scan.at)

    async def close(self) -> None:
        """Close every scan (the store is closing)."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for scan_id in list(self._open):
            await self._close(scan_id)

    async def _continuing(self, key: Key, after: Cursor | None) -> tuple[int, _Scan] | None:
        if after is None:
            return None
        async with self._lock:
            for scan_id, scan in self._open.items():
                if not scan.busy and scan.key == key and scan.at == after:
                    scan.busy = True
                    return scan_id, scan
        return None

    async def _opened(self, query: EventFilter, fmt: ExportFormat) -> tuple[int, _Scan]:
        await self._make_room()
        await self._slots.acquire()
        try:
            with translated():
                scan = await self._declare(query, fmt)
        except BaseException:
            self._slots.release()
            raise
        scan_id = next(self._ids)
        self._open[scan_id] = scan
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap(), name="export scan reaper")
        return scan_id, scan

    async def _declare(self, query: EventFilter, fmt: ExportFormat) -> _Scan:
        conn = await self._pool.acquire()
        try:
            transaction = conn.transaction(isolation="repeatable_read", readonly=True)
            await transaction.start()
            where_sql, params = events.where(query)
            sql = (
                f"SELECT time, id, {_LINES[fmt]} FROM events WHERE {where_sql} "
                "ORDER BY time DESC, id DESC"
            )
            cursor = await conn.cursor(sql, *params)
        except BaseException:
            await self._pool.release(conn)
            raise
        return _Scan(_key(query, fmt), conn, transaction, cursor, busy=True)

    async def _make_room(self) -> None:
        """With every slot taken, close the scan idle the longest (its export reopens it)."""
        if not self._slots.locked():
            return
        async with self._lock:
            idle = [(scan.used, i) for i, scan in self._open.items() if not scan.busy]
        if idle:
            await self._close(min(idle)[1])

    async def _reap(self) -> None:
        while self._open:
            await asyncio.sleep(IDLE_S / 4)
            now = time.monotonic()
            stale = [i for i, s in self._open.items() if not s.busy and now - s.used > IDLE_S]
            for scan_id in stale:
                log.info("export scan idle for %.0fs: closed (its client went away)", IDLE_S)
                await self._close(scan_id)

    async def _close(self, scan_id: int) -> None:
        scan = self._open.pop(scan_id, None)
        if scan is None:
            return
        try:
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await scan.transaction.rollback()
        finally:
            await self._pool.release(scan.conn)
            self._slots.release()


def _key(query: EventFilter, fmt: ExportFormat) -> Key:
    """What two chunks of one export share: the filters and the format."""
    return (
        fmt,
        query.prediction_environment_id,
        query.deployment_id,
        query.status,
        query.type,
        query.source,
        query.since_us,
        query.until_us,
        query.match,
    )


def _joined(rows: list[asyncpg.Record]) -> bytes:
    return "".join(row[2] for row in rows).encode()
