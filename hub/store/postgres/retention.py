"""SQL of retention on PostgreSQL: the retention set through the API, purging in batches.

One purge batch is one write transaction that removes at most ``limit`` of the
oldest events older than the cutoff; their entries leave the GIN index with the
rows. As on SQLite the cutoff is computed inside the transaction from the
retention stored then, and events the notification router has not looked at
(after its ``[tx, seq]`` cursor) are never purged, whatever their age — with
no policy enabled, routing has nothing to do with them and the purge moves the
cursor past them itself, as routing would, rather than wait for the dispatcher.
Identities are never handed out again, so nothing else needs adjusting.
Finished deliveries older than the cutoff go too, with their attempts.
"""

from __future__ import annotations

from collections.abc import Sequence

from pilothouse.hub.api.schemas import EventIn
from pilothouse.hub.store import mapping
from pilothouse.hub.store.postgres import alerting, events, state
from pilothouse.hub.store.postgres.db import Connection
from pilothouse.hub.store.records import RetentionState

_PURGE = (
    "DELETE FROM events WHERE seq IN (SELECT seq FROM events "
    "WHERE time < $1 AND (tx, seq) <= ($2::xid8, $3) ORDER BY time, id LIMIT $4)"
)
_OLD_DELIVERIES = (
    "DELETE FROM notification_deliveries WHERE id IN (SELECT id FROM notification_deliveries "
    "WHERE created_at < $1 AND state <> 'pending' ORDER BY created_at LIMIT $2)"
)


async def read(conn: Connection) -> RetentionState:
    """The retention set through the API (if any) and the last purge."""
    set_by_api = await state.get(conn, state.RETENTION)
    return mapping.retention_state(set_by_api, await state.get(conn, state.LAST_PURGE))


async def write(conn: Connection, days: int, at_us: int) -> RetentionState:
    """Set the retention; return the new state."""
    await state.put(conn, state.RETENTION, {"days": days, "updated_at": at_us})
    return await read(conn)


async def purge_batch(conn: Connection, now_us: int, default_days: int, limit: int) -> int:
    """Remove up to ``limit`` of the oldest events older than the retention; return how many."""
    days = (await read(conn)).days or default_days
    cutoff = mapping.cutoff(now_us, days)
    await alerting.skip_unwatched(conn)  # no policy: nothing waits to be routed
    tx, seq = await state.routed(conn)
    done = await conn.execute(_PURGE, cutoff, tx, seq, limit)
    removed = int(done.split()[-1])
    if removed < limit:
        await conn.execute(_OLD_DELIVERIES, cutoff, limit)
    return removed


async def record(conn: Connection, at_us: int, removed: int, recorded: Sequence[EventIn]) -> None:
    """Note the purge that just ended, and store the events recording it (if any)."""
    await state.put(conn, state.LAST_PURGE, {"at": at_us, "removed": removed})
    if recorded:
        await events.insert(conn, recorded)
