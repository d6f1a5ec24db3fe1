"""The live channel between replicas: PostgreSQL ``LISTEN``/``NOTIFY``.

A replica that commits a change of a PE's desired state (or revokes one of its
agent tokens) sends ``NOTIFY pilothouse_changes, '<replica> <pe id>'`` *inside*
the transaction: PostgreSQL delivers it to every listener exactly when the
change commits, and never if it rolls back. Every replica listens on a
connection of its own (:meth:`Listener.listen`, an eternal task) and hands
what it hears from the *other* replicas to the same callbacks the store rings
for its own writes: the watch streams of that PE wake and replay from their
stored revision.

Stored events only wake the notification dispatcher, which reads everything
from the database anyway; so an ingest transaction does not notify (a NOTIFY
serializes commits), but :class:`EventBell` sends one ``pilothouse_events``
right after, at most once per ``BELL_S`` per replica.

Nothing may be lost in a gap: when the listening connection breaks (the
database restarts, the network drops) the listener reconnects, and then wakes
every watch stream and the dispatcher (``on_gap``): each replays from the
revision it last sent, so a change committed while nobody listened still
reaches its agent. The listener also rings the dispatcher every
``SAFETY_TICK_S``, which bounds the delay of a bell lost with its replica.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from pilothouse.hub.errors import HubError
from pilothouse.hub.store.postgres.db import Connection

log = logging.getLogger("pilothouse.hub.channel")

CHANGES = "pilothouse_changes"
EVENTS = "pilothouse_events"
BELL_S = 0.02
"""Events stored within this long of a bell share the next one."""
SAFETY_TICK_S = 5.0
_FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError, HubError)


async def notify_change(conn: Connection, replica: str, pe_id: str) -> None:
    """Tell every replica, when this transaction commits, that ``pe_id`` changed."""
    await conn.execute("SELECT pg_notify($1, $2)", CHANGES, f"{replica} {pe_id}")


class Listener:
    """What the other replicas changed, heard and handed to this replica's callbacks."""

    def __init__(
        self,
        url: str,
        replica: str,
        on_change: Callable[[str], None],
        on_events: Callable[[], None],
        on_gap: Callable[[], None],
        check_s: float,
    ) -> None:
        self._url = url
        self._replica = replica
        self._on_change = on_change
        self._on_events = on_events
        self._on_gap = on_gap
        self._check_s = check_s
        self.connected = asyncio.Event()
        """Set while listening (tests wait on it)."""

    async def listen(self) -> None:
        """Listen, reconnecting after every break, forever (run it guarded)."""
        while True:
            try:
                await self._listen_once()
            except _FAILURES as exc:
                if self.connected.is_set():
                    log.warning("live channel lost (%s: %s); reconnecting", type(exc).__name__, exc)
            finally:
                self.connected.clear()
            await asyncio.sleep(self._check_s)

    async def _listen_once(self) -> None:
        async with asyncio.timeout(self._check_s * 4):
            conn = await asyncpg.connect(
                self._url, server_settings={"application_name": "pilothouse-hub listener"}
            )
        try:
            await conn.add_listener(CHANGES, self._heard)
            await conn.add_listener(EVENTS, self._heard)
            self.connected.set()
            self._on_gap()  # whatever committed while nobody listened is replayed now
            ticks = 0
            while True:
                await asyncio.sleep(self._check_s)
                async with asyncio.timeout(self._check_s * 4):
                    await conn.fetchval("SELECT 1")
                ticks += 1
                if ticks * self._check_s >= SAFETY_TICK_S:
                    ticks = 0
                    self._on_events()
        finally:
            conn.terminate()

    def _heard(self, _conn: Connection, _pid: int, channel: str, payload: object) -> None:
        sender, _, pe_id = str(payload).partition(" ")
        if sender == self._replica:
            return  # this replica's own write: its callbacks already rang
        if channel == CHANGES:
            self._on_change(pe_id)
        else:
            self._on_events()


class EventBell:
    """Rings the other replicas' dispatchers after events are stored, at most once per BELL_S."""

    def __init__(self, pool: asyncpg.Pool, replica: str) -> None:
        self._pool = pool
        self._replica = replica
        self._pending = False
        self._task: asyncio.Task[None] | None = None

    def ring(self) -> None:
        """Events were committed: a bell goes out within ``BELL_S``."""
        self._pending = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._toll(), name="event bell")

    async def close(self) -> None:
        """Stop ringing."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _toll(self) -> None:
        while self._pending:
            self._pending = False
            try:
                async with self._pool.acquire() as conn:
                    await conn.execute("SELECT pg_notify($1, $2)", EVENTS, self._replica)
            except _FAILURES as exc:  # the safety tick of the listeners makes up for it
                log.debug("event bell not rung: %s", exc)
            await asyncio.sleep(BELL_S)
