"""Moving a hub from SQLite to PostgreSQL: every row of every table, copied once.

``pilothouse hub copy-to postgresql://…`` (the hub stopped) opens the hub's
SQLite database — bringing its schema up to date — and an *empty* PostgreSQL
database — creating the same schema — and copies each table in dependency
order: PEs and their tokens, packages, deployments and the change log, events
(their full-text words indexed as they arrive), per-source health, the hub's
own state, notification channels, policies, alert groups, deliveries and their
attempts, the Use Management Agent switches, the prediction statistics
(windows, hourly rollups, associations with their actuals, drift and
retraining state). Ids, times and ``seq`` numbers are
kept, so watch streams resume at the same revisions and event cursors stay
valid. Events the notification router had already looked at count as routed
on PostgreSQL too: nothing old is notified again.

Events go in batches of :data:`BATCH` (one transaction each); every other table
with ``COPY``. Package archives are files, not rows: they stay in
``<state_dir>/blobs``, which the PostgreSQL replicas share (README).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from pilothouse.hub.errors import StorageError
from pilothouse.hub.settings import HubSettings
from pilothouse.hub.store.postgres import search, state
from pilothouse.hub.store.postgres.db import translated
from pilothouse.hub.store.postgres.store import open_postgres
from pilothouse.hub.store.sqlite.store import open_sqlite

BATCH = 5000
TABLES = (
    "prediction_environments",
    "agent_tokens",
    "model_packages",
    "deployments",
    "changes",
    "events",
    "health_sources",
    "notification_channels",
    "notification_policies",
    "notification_groups",
    "notification_pending",
    "notification_deliveries",
    "notification_attempts",
    "management_paused",
    "monitoring_windows",
    "monitoring_hourly",
    "monitoring_associations",
    "monitoring_state",
)
"""Every table with rows to carry, parents before children (``hub_state`` is converted)."""
_EVENT_COLUMNS = (
    "seq, id, time, prediction_environment_id, deployment_id, source, type, status, message, data"
)
_INSERT_EVENTS = (
    f"INSERT INTO events ({_EVENT_COLUMNS}, search) OVERRIDING SYSTEM VALUE "
    "SELECT s, i, t, p, d, so, ty, st, m, da, w::tsvector FROM unnest("
    "$1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], "
    "$8::text[], $9::text[], $10::text[], $11::text[]) AS u(s, i, t, p, d, so, ty, st, m, da, w)"
)

Progress = Callable[[str, int], None]


async def copy_to_postgres(
    settings: HubSettings, target_url: str, progress: Progress | None = None
) -> dict[str, int]:
    """Copy the hub's SQLite database into the empty PostgreSQL ``target_url``; rows per table."""
    if settings.uses_postgres:
        raise StorageError("the hub's database is PostgreSQL already; copy-to reads SQLite")
    source = settings.database_path
    if not await asyncio.to_thread(source.exists):
        raise StorageError(f"no SQLite database at {source}")
    async with open_sqlite(source, settings.database, _ignore):
        pass  # brings the source schema up to date
    counts: dict[str, int] = {}
    async with (
        open_postgres(target_url, settings.database, _ignore) as store,
        store.pool.acquire() as conn,
    ):
        with translated():
            await _refuse_unless_empty(conn)
            for table in TABLES:
                counts[table] = await _copy_table(conn, source, table, progress)
            await _carry_routing_cursor(conn, source)
    return counts


def _ignore(*_: object) -> None:
    pass


async def _refuse_unless_empty(conn: Any) -> None:
    for table in ("prediction_environments", "events", "model_packages"):
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
            raise StorageError(
                f"the PostgreSQL database is not empty ({table} has rows): copy into a new one"
            )


async def _copy_table(conn: Any, source: Path, table: str, progress: Progress | None) -> int:
    columns = await asyncio.to_thread(_columns, source, table)
    if table == "events":
        columns = _EVENT_COLUMNS.split(", ")
    flags = await _boolean_columns(conn, table)
    copied = 0
    reader = _Reader(source, table, columns)
    try:
        while rows := await asyncio.to_thread(reader.next, BATCH):
            rows = [_converted(row, columns, flags) for row in rows]
            async with conn.transaction():
                if table == "events":
                    await _insert_events(conn, rows)
                else:
                    await conn.copy_records_to_table(table, records=rows, columns=columns)
            copied += len(rows)
            if progress is not None:
                progress(table, copied)
    finally:
        await asyncio.to_thread(reader.close)
    if table in ("events", "changes"):
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'seq'), "
            f"(SELECT coalesce(max(seq), 0) FROM {table}) + 1, false)"
        )
    return copied


async def _insert_events(conn: Any, rows: Sequence[tuple[Any, ...]]) -> None:
    columns = [list(column) for column in zip(*rows, strict=True)]
    columns.append([search.document(row[8], row[9]) for row in rows])
    await conn.execute(_INSERT_EVENTS, *columns)


async def _boolean_columns(conn: Any, table: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = $1 AND data_type = 'boolean'",
        table,
    )
    return {row[0] for row in rows}


def _converted(row: tuple[Any, ...], columns: Sequence[str], flags: set[str]) -> tuple[Any, ...]:
    """SQLite's 0/1 as booleans where PostgreSQL has them; everything else as it is."""
    if not flags:
        return row
    return tuple(
        bool(value) if name in flags and value is not None else value
        for name, value in zip(columns, row, strict=True)
    )


async def _carry_routing_cursor(conn: Any, source: Path) -> None:
    """Events SQLite had routed (``seq`` up to its cursor) count as routed here."""
    routed = await asyncio.to_thread(_sqlite_routed, source)
    found = await conn.fetchrow(
        "SELECT tx, seq FROM events WHERE seq <= $1 ORDER BY seq DESC LIMIT 1", routed
    )
    async with conn.transaction():
        for key, value in await asyncio.to_thread(_sqlite_state, source):
            if key != state.ROUTED_SEQ:
                await state.put(conn, key, value)  # the retention set, the last purge
        if found is not None:
            await state.set_routed(conn, found[0], found[1])


def _columns(source: Path, table: str) -> list[str]:
    with _reading(source) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _sqlite_routed(source: Path) -> int:
    with _reading(source) as conn:
        row = conn.execute("SELECT value FROM hub_state WHERE key = 'routed_seq'").fetchone()
    return 0 if row is None else int(row[0])


def _sqlite_state(source: Path) -> list[tuple[str, Any]]:
    with _reading(source) as conn:
        rows = conn.execute("SELECT key, value FROM hub_state").fetchall()
    return [(key, orjson.loads(value)) for key, value in rows]


def _reading(source: Path) -> contextlib.closing[sqlite3.Connection]:
    """A read-only connection to the SQLite database, closed after the block."""
    return contextlib.closing(_connect(source))


def _connect(source: Path) -> sqlite3.Connection:
    # used from one thread at a time, though not always the same one (asyncio.to_thread)
    return sqlite3.connect(f"file:{source}?mode=ro", uri=True, check_same_thread=False)


class _Reader:
    """One table of the SQLite database, read in batches by a thread (one snapshot)."""

    def __init__(self, source: Path, table: str, columns: Sequence[str]) -> None:
        self._source, self._table, self._columns = source, table, columns
        self._rows: Iterator[tuple[Any, ...]] | None = None
        self._conn: sqlite3.Connection | None = None

    def next(self, count: int) -> list[tuple[Any, ...]]:
        """Up to ``count`` more rows (none: the table is done)."""
        if self._rows is None:
            self._conn = _connect(self._source)
            self._conn.execute("BEGIN")
            order = " ORDER BY seq" if "seq" in self._columns else ""
            self._rows = self._conn.execute(
                f"SELECT {', '.join(self._columns)} FROM {self._table}{order}"
            )
        batch = []
        for row in self._rows:
            batch.append(row)
            if len(batch) == count:
                break
        return batch

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
