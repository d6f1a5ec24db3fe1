"""Connection threads: ordered writes, reads beside them, cancellation, after-commit hooks."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from functools import partial
from pathlib import Path

import pytest

from pilothouse.hub.settings import DatabaseSettings
from pilothouse.hub.store.sqlite.connections import connect
from pilothouse.hub.store.sqlite.threads import ConnectionThreads

pytestmark = [pytest.mark.anyio, pytest.mark.backends("sqlite")]


def _threads(path: Path) -> ConnectionThreads:
    settings = DatabaseSettings(readers=2, mmap_mb=0, cache_mb=1)
    return ConnectionThreads(
        partial(connect, path, settings, writer=True),
        partial(connect, path, settings, writer=False),
        settings.readers,
    )


async def test_sqlite_runs_off_the_loop_and_a_failed_write_rolls_back(
    tmp_path: Path, anyio_backend: str
) -> None:
    db = _threads(tmp_path / "t.db")
    await db.start()
    try:
        await db.write(lambda c: c.execute("CREATE TABLE t (v INTEGER)"))
        loop_thread = threading.get_ident()
        where = await db.write(
            lambda c: (c.execute("INSERT INTO t VALUES (1)"), threading.get_ident())[1]
        )
        assert where != loop_thread

        def half_then_fail(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (2)")
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            await db.write(half_then_fail)
        assert await db.read(lambda c: c.execute("SELECT v FROM t").fetchall()) == [(1,)]
        with pytest.raises(sqlite3.OperationalError):  # readers are read-only
            await db.read(lambda c: c.execute("INSERT INTO t VALUES (3)"))
    finally:
        await db.close()


async def test_after_commit_hook_runs_even_if_the_caller_is_cancelled(
    tmp_path: Path, anyio_backend: str
) -> None:
    db = _threads(tmp_path / "t.db")
    await db.start()
    gate = threading.Event()
    committed: list[int] = []
    try:
        await db.write(lambda c: c.execute("CREATE TABLE t (v INTEGER)"))

        began = threading.Event()

        def slow_insert(conn: sqlite3.Connection) -> int:
            began.set()
            gate.wait(5)
            conn.execute("INSERT INTO t VALUES (7)")
            return 7

        caller = asyncio.ensure_future(db.write(slow_insert, after=committed.append))
        assert await asyncio.to_thread(began.wait, 5), "the job never started"
        caller.cancel()
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await caller
        queued_behind = await db.write(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0])
        assert queued_behind == 1 and committed == [7]
    finally:
        await db.close()


async def test_a_job_cancelled_while_queued_never_runs(tmp_path: Path, anyio_backend: str) -> None:
    db = _threads(tmp_path / "t.db")
    await db.start()
    gate = threading.Event()
    try:
        await db.write(lambda c: c.execute("CREATE TABLE t (v INTEGER)"))
        began = threading.Event()

        def block(conn: sqlite3.Connection) -> None:
            began.set()
            gate.wait(5)

        blocker = asyncio.ensure_future(db.write(block))
        queued = asyncio.ensure_future(db.write(lambda c: c.execute("INSERT INTO t VALUES (1)")))
        # Both writes were submitted while this waited: the second is queued behind the first.
        assert await asyncio.to_thread(began.wait, 5), "the blocking job never started"
        queued.cancel()
        gate.set()
        await blocker
        assert await db.read(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) == 0
    finally:
        await db.close()


async def test_closed_threads_refuse_work(tmp_path: Path, anyio_backend: str) -> None:
    db = _threads(tmp_path / "t.db")
    await db.start()
    await db.close()
    with pytest.raises(RuntimeError, match="closed"):
        await db.read(lambda c: None)
