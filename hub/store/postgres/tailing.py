"""SQL of the live event stream on PostgreSQL: a first page and its position, then what follows.

On SQLite a stream's position is the ``seq`` of the last event it looked at,
and every later event has a greater one. On PostgreSQL replicas commit in
parallel, so ``seq`` is not the order events become visible; the stream reads
in ``(tx, seq)`` order instead, only events of transactions older than every one
still running (as the notification router does, :mod:`.alerting`), and its
position — still one number, the ``seq`` of the last event looked at — is
turned back into ``(tx, seq)`` by looking that event up. A position whose event
was purged resumes at the oldest event stored after it.
"""

from __future__ import annotations

from pilothouse.hub.api.schemas import EventOut
from pilothouse.hub.store import mapping
from pilothouse.hub.store.postgres import events
from pilothouse.hub.store.postgres.alerting import SETTLED
from pilothouse.hub.store.postgres.db import Connection
from pilothouse.hub.store.records import EventFilter, TailChunk


async def position(conn: Connection) -> int:
    """The ``seq`` of the last settled event in ``(tx, seq)`` order (0 when there is none)."""
    found = await conn.fetchval(
        f"SELECT seq FROM events WHERE tx < {SETTLED} ORDER BY tx DESC, seq DESC LIMIT 1"
    )
    return int(found or 0)


async def snapshot(conn: Connection, query: EventFilter) -> tuple[list[EventOut], int]:
    """A newest-first page of ``query`` and the position it was read at (call in one snapshot).

    The page holds settled events only, as the position does: an event committed by a
    transaction that was not settled yet comes after the position, by the stream.
    """
    page: list[EventOut] = []
    if query.limit:
        where_sql, params = events.where(query)
        rows = await conn.fetch(
            f"SELECT {mapping.EVENT_COLUMNS} FROM events WHERE {where_sql} AND tx < {SETTLED} "
            f"ORDER BY time DESC, id DESC LIMIT ${len(params) + 1}",
            *params,
            query.limit,
        )
        page = [mapping.event(row) for row in rows]
    return page, await position(conn)


async def after(
    conn: Connection, seq: int, query: EventFilter, scan: int
) -> tuple[TailChunk, bool]:
    """Settled events after position ``seq`` that match ``query``, looking at ``scan`` at most.

    The flag says whether events after those were left because their transactions
    had not settled: the caller looks again shortly, no commit will wake it.
    """
    start = await conn.fetchrow(
        "SELECT tx, seq FROM events WHERE seq = $1 UNION ALL "
        "(SELECT tx, 0 FROM events WHERE seq > $1 ORDER BY seq LIMIT 1) LIMIT 1",
        seq,
    )
    if start is None:  # nothing at or after the position: start over at the newest
        return TailChunk((), min(seq, await position(conn))), False
    where_sql, params = events.where(query, first=4)
    rows = await conn.fetch(
        f"SELECT tx, seq, ({where_sql}), {mapping.EVENT_COLUMNS} FROM events "
        f"WHERE (tx, seq) > ($1::xid8, $2) AND tx < {SETTLED} ORDER BY tx, seq LIMIT $3",
        start[0],
        start[1],
        scan,
        *params,
    )
    if len(rows) == scan:
        found = tuple((int(row[1]), mapping.event(row[3:])) for row in rows if row[2])
        return TailChunk(found, int(rows[-1][1]), True), False
    last = (rows[-1][0], rows[-1][1]) if rows else (start[0], start[1])
    unsettled = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM events WHERE (tx, seq) > ($1::xid8, $2))", *last
    )
    if not rows:
        return TailChunk((), seq), bool(unsettled)
    found = tuple((int(row[1]), mapping.event(row[3:])) for row in rows if row[2])
    return TailChunk(found, int(rows[-1][1])), bool(unsettled)
