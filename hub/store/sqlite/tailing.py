"""SQL of the live event stream: a first page and its position, then what was stored after.

A stream's position is the ingest order ``seq`` of the last event it has
looked at. ``seq`` grows with every commit of the one writer, so a reader that
saw position *p* finds every later event at ``seq > p``. A first page and the
position it stops at are read in one read transaction (one snapshot), so no
event falls between them. Following reads walk the rowid range after the
position — a bounded scan of what is new, whatever the filters — and test the
filters on those rows only, so a stream of a quiet deployment costs nothing
when another one is busy.
"""

from __future__ import annotations

import sqlite3

from pilothouse.hub.api.schemas import EventOut
from pilothouse.hub.store import mapping
from pilothouse.hub.store.records import EventFilter, TailChunk
from pilothouse.hub.store.sqlite import events


def position(conn: sqlite3.Connection) -> int:
    """The ingest position of the newest stored event (0 when there is none)."""
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])


def snapshot(conn: sqlite3.Connection, query: EventFilter) -> tuple[list[EventOut], int]:
    """A newest-first page of ``query`` and the position it was read at, from one snapshot."""
    page = events.select(conn, query) if query.limit else []
    return page, position(conn)


def after(conn: sqlite3.Connection, seq: int, query: EventFilter, scan: int) -> TailChunk:
    """Events stored after position ``seq`` that match ``query``, looking at ``scan`` at most.

    ``last`` is the position looked at; a position ahead of every stored event
    (events purged, the database replaced) starts over at the newest one.
    """
    where_sql, params = events.where(query, conn)
    rows = conn.execute(
        f"SELECT seq, ({where_sql}), {mapping.EVENT_COLUMNS} FROM events "
        "WHERE seq > ? ORDER BY seq LIMIT ?",
        [*params, seq, scan],
    ).fetchall()
    if not rows:
        newest = position(conn)
        return TailChunk((), min(seq, newest))
    found = tuple((int(row[0]), mapping.event(row[2:])) for row in rows if row[1])
    return TailChunk(found, int(rows[-1][0]), len(rows) == scan)
