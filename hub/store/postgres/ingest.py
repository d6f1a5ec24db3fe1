"""Ingest of a batch of events on PostgreSQL by ``COPY``: the database's cheapest way in.

Per event, an ``INSERT … SELECT FROM unnest(…)`` (:func:`.events.insert`) costs the
database a heap insert and a WAL record per row and the parsing of the search
vector's text. ``COPY … FROM STDIN BINARY`` into ``events`` writes the rows a
page at a time (one WAL record per page, not per row) and takes the search
vector already in ``tsvector``'s binary form (:func:`.search.binary_document`):
about a third less of the database's time per event, measured with the hub's
batches of 500 (bench/hub_events.py).

``COPY`` has no ``ON CONFLICT``, so a batch is copied in one transaction that
fails whole if any of its ids is stored already (the unique index on ``id``
refuses it), and is then stored by the ``INSERT … ON CONFLICT DO NOTHING``
statement instead: a re-sent event is stored once either way. A re-sent batch
(an agent's retry after a lost answer, possibly reaching another replica) is
rare, so the copy does not look the ids up first (that lookup alone was a
tenth of what the copy saves). In the transaction:

1. the batch's events (a repeated id once, as its first occurrence) are copied
   in, in the batch's order: ``seq`` numbers them in that order, the identity
   drawn row by row as the ``INSERT`` draws it;
2. the latest status per deployment and source among them updates
   ``health_sources`` exactly as the ``INSERT``'s own upsert does (by ``seq``,
   in key order).

Batches smaller than :data:`COPY_FROM` take the statement at once (one round
trip; the copy's transaction takes four).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.hub.api.schemas import EventIn
from pilothouse.hub.store import mapping
from pilothouse.hub.store.postgres import events, search
from pilothouse.hub.store.postgres.db import Connection

COPY_FROM = 32
"""Batches of this many events or more are copied; smaller ones inserted by one statement."""

_COLUMNS = [*(c.strip() for c in mapping.EVENT_COLUMNS.split(",")), "search"]
_HEALTH = """
INSERT INTO health_sources (deployment_id, source, status, message, event_id, time, seq)
SELECT deployment_id, source, status, message, id, time, seq FROM events
WHERE id = any($1::text[])
ORDER BY deployment_id, source
ON CONFLICT (deployment_id, source) DO UPDATE SET
    status = excluded.status, message = excluded.message,
    event_id = excluded.event_id, time = excluded.time, seq = excluded.seq
WHERE excluded.seq > health_sources.seq
"""


async def prepare(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Let ``conn`` send ``tsvector`` values as the bytes of its binary form (for ``COPY``).

    Run on every pooled connection (``init`` of the pool). The hub never reads a
    ``tsvector`` back: it only writes the ``search`` column and queries it.
    """
    await conn.set_type_codec(
        "tsvector", schema="pg_catalog", encoder=bytes, decoder=bytes, format="binary"
    )


async def add(conn: Connection, batch: Sequence[EventIn]) -> int:
    """Store the events whose id is new; return how many were (its own transaction)."""
    if len(batch) < COPY_FROM:
        return await events.insert(conn, batch)
    try:
        async with conn.transaction():
            return await _copy(conn, batch)
    except asyncpg.UniqueViolationError:  # some were stored before (a re-sent batch)
        return await events.insert(conn, batch)


async def _copy(conn: Connection, batch: Sequence[EventIn]) -> int:
    rows: dict[str, mapping.EventRow] = {}
    for row in map(mapping.event_row, batch):
        rows.setdefault(row[0], row)  # a repeated id counts once, as its first occurrence
    await conn.copy_records_to_table(
        "events",
        records=[(*row, search.binary_document(row[7], row[8])) for row in rows.values()],
        columns=_COLUMNS,
    )
    latest: dict[tuple[str, str], str] = {}
    for row in rows.values():  # the last of each deployment and source has the greatest seq
        if row[3] is not None and row[6] != Status.INFORMATIONAL.value:
            latest[row[3], row[4]] = row[0]
    if latest:
        await conn.execute(_HEALTH, list(latest.values()))
    return len(rows)
