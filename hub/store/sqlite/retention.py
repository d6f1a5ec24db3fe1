"""SQL of retention: the retention set through the API, and purging old events in batches.

One purge batch is one write transaction that removes at most ``limit`` of the
oldest events older than the cutoff — their full-text index entries first (an
external-content FTS5 table must be told the exact text it indexed), then the
rows. The cutoff is computed inside the transaction from the retention stored
at that moment, so a retention raised while a purge runs is obeyed by its very
next batch: an event younger than the retention is never removed.

Events the notification router has not looked at yet (``seq`` after the
routing cursor) are never purged, whatever their age. SQLite gives a new row
the highest rowid plus one, so purging the newest rows would hand their
``seq`` out again, under a cursor that has passed it; a batch that removes
them therefore moves the cursor back to the highest ``seq`` left — everything
between is gone, so nothing is routed twice and no new event is skipped.
Deliveries older than the cutoff that are finished go too, with their
attempts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pilothouse.hub.api.schemas import EventIn
from pilothouse.hub.store import mapping
from pilothouse.hub.store.records import RetentionState
from pilothouse.hub.store.sqlite import alerting, events, state

_OLDEST = (
    "SELECT seq, message, data FROM events WHERE time < ? AND seq <= ? ORDER BY time, id LIMIT ?"
)
_UNINDEX = "INSERT INTO events_fts (events_fts, rowid, message, data) VALUES ('delete', ?, ?, ?)"
_DELETE = "DELETE FROM events WHERE seq = ?"
_OLD_DELIVERIES = (
    "DELETE FROM notification_deliveries WHERE id IN (SELECT id FROM notification_deliveries "
    "WHERE created_at < ? AND state != 'pending' ORDER BY created_at LIMIT ?)"
)


def read(conn: sqlite3.Connection) -> RetentionState:
    """The retention set through the API (if any) and the last purge."""
    set_by_api = state.get(conn, state.RETENTION)
    return mapping.retention_state(set_by_api, state.get(conn, state.LAST_PURGE))


def write(conn: sqlite3.Connection, days: int, at_us: int) -> RetentionState:
    """Set the retention; return the new state."""
    state.put(conn, state.RETENTION, {"days": days, "updated_at": at_us})
    return read(conn)


def purge_batch(conn: sqlite3.Connection, now_us: int, default_days: int, limit: int) -> int:
    """Remove up to ``limit`` of the oldest events older than the retention; return how many."""
    days = read(conn).days or default_days
    cutoff = mapping.cutoff(now_us, days)
    alerting.skip_unwatched(conn)  # no policy: nothing waits to be routed
    routed = int(state.get(conn, state.ROUTED_SEQ) or 0)
    rows = conn.execute(_OLDEST, (cutoff, routed, limit)).fetchall()
    if rows:
        conn.executemany(_UNINDEX, rows)
        conn.executemany(_DELETE, [(row[0],) for row in rows])
        newest = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        if newest < routed:
            state.put(conn, state.ROUTED_SEQ, newest)
    if len(rows) < limit:
        conn.execute(_OLD_DELIVERIES, (cutoff, limit))
    return len(rows)


def record(conn: sqlite3.Connection, at_us: int, removed: int, recorded: Sequence[EventIn]) -> None:
    """Note the purge that just ended, and store the events recording it (if any)."""
    state.put(conn, state.LAST_PURGE, {"at": at_us, "removed": removed})
    if recorded:
        events.insert(conn, recorded)
