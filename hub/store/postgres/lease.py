"""The background-work lease on PostgreSQL: a session advisory lock on a connection of its own.

Every replica runs :meth:`AdvisoryLease.keep` (an eternal task). It opens a
dedicated connection and tries ``pg_try_advisory_lock`` every
``database.lease_poll_s``; the replica that gets it holds the lease for as long
as that connection lives. The holder checks the connection every poll: when
it fails to answer within ``database.lease_timeout_s`` the lease counts as lost
here and the background work stops at once.

PostgreSQL frees the lock the moment the holder's connection ends: a replica
killed (SIGKILL closes its sockets) or restarted hands the lease to another
within one poll; a replica cut off by the network is dropped by the server's
TCP keepalives (set short on this connection) and the lease moves within
seconds. A restarted database frees it too; the replicas reconnect and one of
them takes it.

On acquiring the lease the new holder first runs ``on_acquired`` — the store
releases the notification deliveries claimed by the former holder, so they are
sent again now rather than when their claim runs out (at least once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from pilothouse.hub.errors import HubError
from pilothouse.hub.settings import DatabaseSettings

log = logging.getLogger("pilothouse.hub.lease")

LOCK_KEY = 0x70696C6F_62616B67  # "pilobakg": the background-work lease
KEEPALIVES = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
    "application_name": "pilothouse-hub lease",
}
_FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError, HubError)


class AdvisoryLease:
    """The lease of this replica, kept on its own connection."""

    def __init__(
        self,
        url: str,
        settings: DatabaseSettings,
        on_acquired: Callable[[], Awaitable[object]],
        key: int = LOCK_KEY,
    ) -> None:
        self._url = url
        self._poll_s = settings.lease_poll_s
        self._timeout_s = settings.lease_timeout_s
        self._on_acquired = on_acquired
        self._key = key
        self._held = asyncio.Event()
        self._free = asyncio.Event()
        self._free.set()

    @property
    def held(self) -> bool:
        """Whether this replica holds the lease now."""
        return self._held.is_set()

    async def acquired(self) -> None:
        """Return once this replica holds the lease."""
        await self._held.wait()

    async def lost(self) -> None:
        """Return once this replica no longer holds it."""
        await self._free.wait()

    async def keep(self) -> None:
        """Try for the lease, hold it while the connection lives, forever (run it guarded)."""
        while True:
            try:
                await self._hold_once()
            except _FAILURES as exc:
                if self.held:
                    log.warning("this replica lost the lease: %s: %s", type(exc).__name__, exc)
                else:
                    log.debug("lease: no database (%s: %s); trying again", type(exc).__name__, exc)
            finally:
                self._set(held=False)
            await asyncio.sleep(self._poll_s)

    async def _hold_once(self) -> None:
        async with asyncio.timeout(self._timeout_s):
            conn = await asyncpg.connect(self._url, server_settings=KEEPALIVES)
        try:
            while not await self._ask(conn, "SELECT pg_try_advisory_lock($1)", self._key):  # noqa: ASYNC110 - polling the database, no event to wait on
                await asyncio.sleep(self._poll_s)
            async with asyncio.timeout(self._timeout_s * 4):
                await self._on_acquired()
            self._set(held=True)
            log.info("this replica holds the lease: it runs the background work")
            while True:
                await asyncio.sleep(self._poll_s)
                await self._ask(conn, "SELECT 1")
        finally:
            conn.terminate()  # never wait on a connection that may be dead; the lock goes with it

    async def _ask(self, conn: asyncpg.Connection, sql: str, *args: object) -> object:
        async with asyncio.timeout(self._timeout_s):
            return await conn.fetchval(sql, *args)

    def _set(self, *, held: bool) -> None:
        if held:
            self._free.clear()
            self._held.set()
        else:
            self._held.clear()
            self._free.set()
