"""The durable queue: a bounded, byte-counted FIFO on SQLite, and the loop that drains it."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pilothouse.foundation.aio import durable_queue
from pilothouse.foundation.aio.durable_queue import QueueTable, SqliteThread
from pilothouse.foundation.aio.tasks import cancel_and_wait

pytestmark = pytest.mark.anyio

LIMIT = 5.0
"""Bound on any wait of these tests: a broken loop fails, it does not hang."""


class Unreachable(Exception):
    """The sink is out of reach: the drain loop retries."""


class Source:
    """A queue in memory with a sink: what ``drain`` is given by its owners."""

    def __init__(self) -> None:
        self.items: deque[str] = deque()
        self.delivered: list[str] = []
        self.more = asyncio.Event()
        self.calls = 0
        self.script: deque[Exception | None] = deque()
        """What the next calls do, one each: raise the error, or (None) deliver."""
        self.called = asyncio.Event()
        self.call_times: list[float] = []
        self.told: list[Exception] = []
        """What the loop told ``on_retry``."""

    def drain(self, delay: Callable[[int], float]) -> asyncio.Task[None]:
        """Start the loop under test on this source."""
        return asyncio.create_task(
            durable_queue.drain(
                self.deliver, self.more, delay, retry_on=(Unreachable,), on_retry=self.told.append
            )
        )

    def put(self, *items: str) -> None:
        self.items.extend(items)
        self.more.set()

    async def deliver(self) -> bool:
        self.calls += 1
        self.call_times.append(asyncio.get_running_loop().time())
        self.called.set()
        failure = self.script.popleft() if self.script else None
        if failure is not None:
            raise failure
        if not self.items:
            self.more.clear()
            return False
        self.delivered.append(self.items.popleft())
        return True

    async def next_call(self) -> None:
        self.called.clear()
        async with asyncio.timeout(LIMIT):
            await self.called.wait()


async def idle_loop_turns(n: int = 20) -> None:
    """Let every ready task run ``n`` times (no wall-clock time passes)."""
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.fixture
async def table(tmp_path: Path) -> AsyncIterator[tuple[SqliteThread, QueueTable]]:
    queue = QueueTable("items", max_bytes=100)
    file = SqliteThread(tmp_path / "q.db", "test-queue")
    await file.open(queue.schema)
    yield file, queue
    await file.close()


async def append(file: SqliteThread, queue: QueueTable, bodies: list[bytes], at_once: int) -> int:
    def run(db: sqlite3.Connection) -> int:
        with db:
            db.execute("BEGIN IMMEDIATE")
            return queue.append(db, bodies, at_once)

    return await file.run(run)


async def stored(file: SqliteThread, queue: QueueTable) -> list[bytes]:
    return [bytes(body) for _, body in await file.run(lambda db: queue.peek(db, 1000))]


# --- the drain loop ----------------------------------------------------------------------


async def test_delivers_everything_then_waits_for_more_without_spinning() -> None:
    source = Source()
    source.put("a", "b", "c")
    task = source.drain(lambda _: 0.0)
    try:
        async with asyncio.timeout(LIMIT):
            while source.more.is_set():
                await source.next_call()
        assert source.delivered == ["a", "b", "c"]
        calls = source.calls
        await idle_loop_turns()
        assert source.calls == calls, "an empty queue is waited on, not polled"

        source.put("d")
        await source.next_call()
        await idle_loop_turns()
        assert source.delivered == ["a", "b", "c", "d"]
        assert source.told == []
    finally:
        await cancel_and_wait(task)


async def test_backs_off_longer_after_each_failure_and_starts_over_after_a_delivery() -> None:
    source = Source()
    source.put("a", "b")
    source.script.extend([Unreachable("1"), Unreachable("2"), Unreachable("3"), None])
    source.script.append(Unreachable("after a delivery"))
    attempts: list[int] = []

    def delay(attempt: int) -> float:
        attempts.append(attempt)
        return 0.02 * 2.0**attempt

    task = source.drain(delay)
    try:
        async with asyncio.timeout(LIMIT):
            while source.items or source.more.is_set():
                await source.next_call()
    finally:
        await cancel_and_wait(task)

    assert source.delivered == ["a", "b"]
    assert [str(e) for e in source.told] == ["1", "2", "3", "after a delivery"]
    # Three failures in a row: attempts 0, 1, 2; the delivery of "a" starts over at 0.
    assert attempts == [0, 1, 2, 0]
    # Each retry came after its delay, not before: calls 1-3 failed, 4 delivered "a",
    # 5 failed again, 6 delivered "b".
    assert len(source.call_times) == 7  # the seventh found the queue empty
    gaps = [later - earlier for earlier, later in itertools.pairwise(source.call_times)]
    for gap, wanted in zip(gaps, [0.02, 0.04, 0.08, None, 0.02], strict=False):
        if wanted is not None:
            assert gap >= wanted * 0.95, (gaps, attempts)


async def test_an_error_it_does_not_retry_ends_the_loop() -> None:
    source = Source()
    source.put("a")
    source.script.append(ValueError("a bug"))
    task = source.drain(lambda _: 0.0)
    with pytest.raises(ValueError, match="a bug"):
        async with asyncio.timeout(LIMIT):
            await task
    assert source.told == []
    assert source.items == deque(["a"])


async def test_cancelling_ends_a_back_off_at_once() -> None:
    source = Source()
    source.put("a")
    source.script.append(Unreachable("down"))
    task = source.drain(lambda _: 3600.0)
    await source.next_call()
    await idle_loop_turns()
    async with asyncio.timeout(LIMIT):
        await cancel_and_wait(task)
    assert task.cancelled()
    assert source.delivered == []
    assert [str(e) for e in source.told] == ["down"]


# --- the table and its byte count ------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "at_once", "dropped"),
    [
        (15, 1, 5),  # 150 bytes in a bound of 100: the five oldest, one at a time
        (12, 4, 4),  # 120 bytes: four at a time, so 80 bytes are left
        (12, 0, 2),  # asked for none at a time: still one, or the bound would never hold
    ],
)
async def test_past_the_bound_the_oldest_go(
    table: tuple[SqliteThread, QueueTable], written: int, at_once: int, dropped: int
) -> None:
    file, queue = table
    bodies = [b"%09d" % i + b"\n" for i in range(written)]  # 10 bytes each
    assert await append(file, queue, bodies, at_once=at_once) == dropped
    assert queue.size_bytes == 10 * (written - dropped) <= queue.max_bytes
    assert await stored(file, queue) == bodies[dropped:]


async def test_a_body_larger_than_the_bound_empties_the_table(
    table: tuple[SqliteThread, QueueTable],
) -> None:
    file, queue = table
    assert await append(file, queue, [b"x" * 30], at_once=1) == 0
    assert await append(file, queue, [b"y" * 101], at_once=1) == 2
    assert queue.size_bytes == 0
    assert await stored(file, queue) == []


async def test_the_count_follows_deletes_and_is_found_again_on_open(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    queue = QueueTable("items", max_bytes=1000)
    file = SqliteThread(path, "test-queue")
    await file.open(queue.schema)
    await append(file, queue, [b"a" * 10, b"b" * 20, b"c" * 30], at_once=1)
    rows = await file.run(lambda db: queue.peek(db, 2))
    assert [bytes(b) for _, b in rows] == [b"a" * 10, b"b" * 20]
    await file.run(lambda db: queue.delete_upto(db, rows[-1][0]))
    assert queue.size_bytes == 30
    await file.close()

    again = QueueTable("items", max_bytes=1000)
    reopened = SqliteThread(path, "test-queue")
    await reopened.open(again.schema)
    assert await reopened.run(again.count) == 30
    assert again.size_bytes == 30
    assert await stored(reopened, again) == [b"c" * 30]
    await reopened.close()


async def test_peek_stops_near_max_bytes_but_always_takes_the_first(
    table: tuple[SqliteThread, QueueTable],
) -> None:
    file, queue = table
    await append(file, queue, [b"a" * 40, b"b" * 40, b"c" * 10], at_once=1)
    two = await file.run(lambda db: queue.peek(db, 10, max_bytes=85))
    assert [bytes(b) for _, b in two] == [b"a" * 40, b"b" * 40]
    one = await file.run(lambda db: queue.peek(db, 10, max_bytes=5))
    assert [bytes(b) for _, b in one] == [b"a" * 40]
    limited = await file.run(lambda db: queue.peek(db, 1))
    assert len(limited) == 1


async def test_sqlite_errors_become_the_owners_errors(tmp_path: Path) -> None:
    class StoreError(Exception):
        pass

    file = SqliteThread(tmp_path / "q.db", "test-queue", error=lambda e: StoreError(str(e)))
    with pytest.raises(RuntimeError, match="is not open"):
        await file.run(lambda db: db.execute("SELECT 1"))
    await file.open("")
    with pytest.raises(StoreError, match="no such table") as raised:
        await file.run(lambda db: db.execute("SELECT * FROM missing"))
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    await file.close()

    plain = SqliteThread(tmp_path / "p.db", "test-queue")
    await plain.open("")
    with pytest.raises(sqlite3.OperationalError):
        await plain.run(lambda db: db.execute("SELECT * FROM missing"))
    await plain.close()


def test_a_table_is_named_by_an_identifier() -> None:
    with pytest.raises(ValueError, match="identifier"):
        QueueTable("items; DROP TABLE x", 10)
