"""Threads that own the SQLite connections, so no sqlite3 call runs on the event loop.

SQLite takes one writer at a time, and a connection belongs to the thread that
opened it. So one *writer* thread runs every write, in the order submitted,
each in its own ``BEGIN IMMEDIATE`` transaction; a small pool of *reader*
threads answers reads, each in a read transaction, which in WAL mode is a
consistent snapshot that never waits for the writer. Long scans (exports) go
to *scanner* threads of their own, so they never queue ahead of the short
reads that API requests wait on. Each thread opens its own
connection when it starts and closes it when it stops.

A job is a plain function of a connection. Its result travels back to the
event loop through ``call_soon_threadsafe``. A caller cancelled while its job
waits in the queue drops the job; once a job has started it runs to its end
(sqlite3 cannot stop a write halfway and keep it atomic) and only its result is
dropped. ``after`` callbacks of a write run on the loop once it has committed,
whether or not its caller is still waiting: change notifications must never be
lost to a cancelled request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], T]
Connect = Callable[[], sqlite3.Connection]

log = logging.getLogger("pilothouse.hub.store")


@dataclass(slots=True)
class _Task(Generic[T]):
    fn: Job[T]
    begin: str | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]
    after: list[Callable[[T], None]] = field(default_factory=list)

    def run(self, conn: sqlite3.Connection) -> None:
        if self.future.cancelled():
            return
        try:
            result = self._transaction(conn)
        except BaseException as exc:
            self._report(exc, None)
        else:
            self._report(None, result)

    def _transaction(self, conn: sqlite3.Connection) -> T:
        if self.begin is None:
            return self.fn(conn)
        conn.execute(self.begin)
        try:
            result = self.fn(conn)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _report(self, error: BaseException | None, result: T | None) -> None:
        try:
            self.loop.call_soon_threadsafe(self._settle, error, result)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            log.debug("result of a database job dropped: event loop closed")

    def _settle(self, error: BaseException | None, result: Any) -> None:
        if error is None:
            for callback in self.after:
                callback(result)
        if self.future.cancelled():
            return
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(result)


class _Worker(threading.Thread):
    """One thread, one connection, jobs from a shared queue until a ``None``."""

    def __init__(self, name: str, connect: Connect, jobs: queue.SimpleQueue[_Task[Any] | None]):
        super().__init__(name=name, daemon=True)
        self._connect = connect
        self.jobs = jobs
        self.loop = asyncio.get_running_loop()
        self.started_future: asyncio.Future[None] = self.loop.create_future()
        self.stopped_future: asyncio.Future[None] = self.loop.create_future()

    def run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            self._resolve(self.started_future, exc)
            self._resolve(self.stopped_future, None)
            return
        self._resolve(self.started_future, None)
        try:
            while (task := self.jobs.get()) is not None:
                task.run(conn)
        finally:
            conn.close()
            self._resolve(self.stopped_future, None)

    def _resolve(self, future: asyncio.Future[None], error: BaseException | None) -> None:
        def settle() -> None:
            if future.done():
                return
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            self.loop.call_soon_threadsafe(settle)


class ConnectionThreads:
    """A writer thread and a pool of reader threads, each with its own connection."""

    def __init__(
        self,
        connect_writer: Connect,
        connect_reader: Connect,
        readers: int,
        connect_scanner: Connect | None = None,
        scanners: int = 0,
    ) -> None:
        self._connect_writer = connect_writer
        self._connect_reader = connect_reader
        self._readers = readers
        self._connect_scanner = connect_scanner
        self._scanners = scanners if connect_scanner is not None else 0
        self._write_jobs: queue.SimpleQueue[_Task[Any] | None] = queue.SimpleQueue()
        self._read_jobs: queue.SimpleQueue[_Task[Any] | None] = queue.SimpleQueue()
        self._scan_jobs: queue.SimpleQueue[_Task[Any] | None] = queue.SimpleQueue()
        self._workers: list[_Worker] = []

    async def start(self) -> None:
        """Start the writer, the readers, the scanners; raise if one cannot open its connection."""
        await self._spawn("hub db writer", self._connect_writer, self._write_jobs)
        for i in range(self._readers):
            await self._spawn(f"hub db reader {i}", self._connect_reader, self._read_jobs)
        if self._connect_scanner is not None:
            for i in range(self._scanners):
                await self._spawn(f"hub db scanner {i}", self._connect_scanner, self._scan_jobs)

    async def write(
        self, fn: Job[T], *, after: Callable[[T], None] | None = None, transaction: bool = True
    ) -> T:
        """Run ``fn`` on the writer in one transaction (or in none: it manages its own)."""
        begin = "BEGIN IMMEDIATE" if transaction else None
        return await self._submit(self._write_jobs, fn, begin, after)

    async def read(self, fn: Job[T]) -> T:
        """Run ``fn`` in one read transaction on a reader thread."""
        return await self._submit(self._read_jobs, fn, "BEGIN", None)

    async def scan(self, fn: Job[T]) -> T:
        """Run ``fn`` in one read transaction on a scanner thread (a reader if there are none)."""
        jobs = self._scan_jobs if self._scanners else self._read_jobs
        return await self._submit(jobs, fn, "BEGIN", None)

    async def close(self) -> None:
        """Let queued jobs finish, then stop every thread and close its connection."""
        for worker in self._workers:
            worker.jobs.put(None)
        for worker in self._workers:
            await asyncio.shield(worker.stopped_future)
        self._workers.clear()

    async def _spawn(
        self, name: str, connect: Connect, jobs: queue.SimpleQueue[_Task[Any] | None]
    ) -> None:
        worker = _Worker(name, connect, jobs)
        worker.start()
        await worker.started_future
        self._workers.append(worker)

    async def _submit(
        self,
        jobs: queue.SimpleQueue[_Task[Any] | None],
        fn: Job[T],
        begin: str | None,
        after: Callable[[T], None] | None,
    ) -> T:
        if not self._workers:
            raise RuntimeError("the database is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        task = _Task(fn, begin, loop, future, [after] if after else [])
        jobs.put(task)
        return await task.future
