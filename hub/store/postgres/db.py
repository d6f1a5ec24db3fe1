"""Connections to PostgreSQL: the pool, transactions, and where asyncpg's errors become the hub's.

Every store method is one call of :meth:`Database.write` (a read-committed
transaction, or one statement, which is a transaction of its own: no ``BEGIN``
and ``COMMIT`` round trips) or :meth:`Database.read` (one statement, or a
read-only repeatable-read transaction when it needs a single snapshot). A write runs in a
task of its own, shielded from its caller: once started it commits or rolls
back whole, and its ``after`` callback (waking watch streams, the notification
dispatcher) runs once committed even if the request that asked for it went away —
as the SQLite backend does. A transaction that loses a deadlock or a
serialization conflict to another replica is run again, a few times.

asyncpg's errors are translated in exactly one place, :func:`translated`: a lost
or refused connection is :class:`~pilothouse.hub.errors.DatabaseUnavailable` (503,
try again), a NUL character — which PostgreSQL cannot store in text — is
:class:`~pilothouse.hub.errors.InvalidInput`; a taken unique name is turned into
``Conflict`` where it is inserted (:func:`taken`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeAlias, TypeVar

import asyncpg

from pilothouse.hub.errors import Conflict, DatabaseUnavailable, InvalidInput, StorageError
from pilothouse.hub.store.records import PageQuery

T = TypeVar("T")
Connection: TypeAlias = (
    "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"
)
"""A connection as the store's SQL functions get it: straight, or lent by the pool."""
Job = Callable[[Connection], Awaitable[T]]

log = logging.getLogger("pilothouse.hub.store")

RETRIES = 5
"""Times a transaction that lost a deadlock or serialization conflict is run again."""

_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    ConnectionError,
    OSError,
)
"""What a database that went away (restarted, unreachable, full) raises."""
_RETRIED = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Turn asyncpg's errors into the hub's (the one place that knows them)."""
    try:
        yield
    except (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError):
        raise InvalidInput(
            "a text field holds a character the database cannot store (NUL, U+0000)"
        ) from None
    except _LOST as exc:
        raise DatabaseUnavailable(
            f"the database is unavailable ({type(exc).__name__}: {exc}); try again"
        ) from exc
    except asyncpg.PostgresError as exc:
        raise StorageError(f"database error ({exc.sqlstate}): {exc}") from exc


class Database:
    """A pool of connections and the transactions the store runs on it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._writes: set[asyncio.Task[Any]] = set()

    async def write(
        self, fn: Job[T], *, after: Callable[[T], None] | None = None, one_statement: bool = False
    ) -> T:
        """Run ``fn`` in one transaction, to its end even if the caller is cancelled.

        ``one_statement``: ``fn`` runs a single statement, its own transaction (or opens
        the transactions it needs itself).
        """
        task = asyncio.create_task(self._commit(fn, after, one_statement), name="hub db write")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return await asyncio.shield(task)

    async def read(self, fn: Job[T], *, snapshot: bool = False) -> T:
        """Run ``fn`` on a pooled connection (in one read-only snapshot if asked)."""
        with translated():
            async with self.pool.acquire() as conn:
                if not snapshot:
                    return await fn(conn)
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    return await fn(conn)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """One pooled connection for the block (errors translated)."""
        with translated():
            async with self.pool.acquire() as conn:
                yield conn

    async def close(self) -> None:
        """Let running writes finish, then close every connection."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        await self.pool.close()

    async def _commit(
        self, fn: Job[T], after: Callable[[T], None] | None, one_statement: bool
    ) -> T:
        for attempt in range(RETRIES + 1):
            try:
                with translated():
                    async with self.pool.acquire() as conn:
                        if one_statement:
                            result = await fn(conn)
                        else:
                            async with conn.transaction():
                                result = await fn(conn)
            except StorageError as exc:
                if attempt == RETRIES or not isinstance(exc.__cause__, _RETRIED):
                    raise
                log.debug("transaction lost to another (%s); again", exc.__cause__)
                await asyncio.sleep(0.005 * (attempt + 1))
                continue
            if after is not None:
                after(result)
            return result
        raise AssertionError("unreachable")


def page_clause(
    page: PageQuery, time_column: str, first: int, id_column: str = "id"
) -> tuple[str, list[Any]]:
    """``AND (time, id) < cursor`` when there is one, and a page's order and limit.

    ``first`` is the number of the first placeholder (``$first``) it may use.
    """
    where, params = "", []
    n = first
    if page.after is not None:
        where = f" AND ({time_column}, {id_column}) < (${n}, ${n + 1})"
        params = [page.after.time_us, page.after.id]
        n += 2
    order = f" ORDER BY {time_column} DESC, {id_column} DESC LIMIT ${n}"
    return where + order, [*params, page.limit]


@contextlib.contextmanager
def taken(message: str) -> Iterator[None]:
    """Turn a unique violation inside the block into ``Conflict(message)``."""
    try:
        yield
    except asyncpg.UniqueViolationError:
        raise Conflict(message) from None
