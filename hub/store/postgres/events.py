"""SQL of events on PostgreSQL: idempotent batch ingest, filtered newest-first pages, search.

Events stored with other changes, and small batches, go in by one statement
(large batches from agents are copied in, :mod:`.ingest`, and fall back to it
when one of their ids is stored already): one round trip whatever its size,
and on its own a transaction of its own, so no ``BEGIN`` and ``COMMIT`` round
trips either: an ``INSERT … SELECT FROM unnest(…) ON CONFLICT (id) DO
NOTHING`` (a retried batch adds nothing; ``seq`` numbers the new rows in the
batch's order) whose new rows feed, in the same statement, the upsert of each
deployment's latest status per source, by ingest order (``seq``) as on SQLite,
in key order.
Two replicas storing overlapping batches at once (an agent's retry) may
deadlock on the event ids; PostgreSQL breaks the tie and the loser's statement
runs again (:class:`~.db.Database`).
The words to search are extracted in Python and handed to PostgreSQL as a
``tsvector`` (:mod:`.search`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.hub.api.schemas import EventIn, EventOut
from pilothouse.hub.store import mapping
from pilothouse.hub.store.postgres import search
from pilothouse.hub.store.postgres.db import Connection
from pilothouse.hub.store.records import EventFilter, SourceStatus

_INSERT = f"""
WITH stored AS (
    INSERT INTO events ({mapping.EVENT_COLUMNS}, search)
    SELECT i, t, p, d, s, ty, st, m, da, w::tsvector FROM unnest(
        $1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
        $8::text[], $9::text[], $10::text[]) AS u(i, t, p, d, s, ty, st, m, da, w)
    ON CONFLICT (id) DO NOTHING
    RETURNING deployment_id, source, status, message, id, time, seq
), latest AS (
    SELECT DISTINCT ON (deployment_id, source) * FROM stored
    WHERE deployment_id IS NOT NULL AND status <> '{Status.INFORMATIONAL.value}'
    ORDER BY deployment_id, source, seq DESC
), health AS (
    INSERT INTO health_sources (deployment_id, source, status, message, event_id, time, seq)
    SELECT * FROM latest ORDER BY deployment_id, source
    ON CONFLICT (deployment_id, source) DO UPDATE SET
        status = excluded.status, message = excluded.message,
        event_id = excluded.event_id, time = excluded.time, seq = excluded.seq
    WHERE excluded.seq > health_sources.seq
)
SELECT count(*) FROM stored
"""


async def insert(conn: Connection, events: Sequence[EventIn]) -> int:
    """Store the events whose id is new, in one statement; return how many were."""
    first: dict[str, mapping.EventRow] = {}
    for row in map(mapping.event_row, events):
        first.setdefault(row[0], row)  # a repeated id counts once, as its first occurrence
    if not first:
        return 0
    rows = list(first.values())  # in the batch's order: ``seq`` is the order of ingest
    columns = [list(column) for column in zip(*rows, strict=True)]
    columns.append([search.document(row[7], row[8]) for row in rows])
    return int(await conn.fetchval(_INSERT, *columns))


async def select(conn: Connection, query: EventFilter) -> list[EventOut]:
    """One page of events matching ``query``, newest first."""
    where_sql, params = where(query)
    sql = (
        f"SELECT {mapping.EVENT_COLUMNS} FROM events WHERE {where_sql} "
        f"ORDER BY time DESC, id DESC LIMIT ${len(params) + 1}"
    )
    return [mapping.event(row) for row in await conn.fetch(sql, *params, query.limit)]


async def health_sources(
    conn: Connection, deployment_ids: Sequence[str]
) -> dict[str, list[SourceStatus]]:
    """The latest status per source of each deployment."""
    out: dict[str, list[SourceStatus]] = {d: [] for d in deployment_ids}
    if not out:
        return out
    rows = await conn.fetch(
        f"SELECT {mapping.HEALTH_COLUMNS} FROM health_sources "
        "WHERE deployment_id = any($1::text[])",
        list(out),
    )
    return mapping.health_sources(out, rows)


def where(query: EventFilter, first: int = 1) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause of ``query`` (placeholders from ``$first``) and its parameters."""
    equal = mapping.event_equalities(query)
    clauses: list[str] = []
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return f"${first + len(params) - 1}"

    for column, value in equal.items():
        if value is not None:
            clauses.append(f"{column} = {param(str(value))}")
    if query.since_us is not None:
        clauses.append(f"time >= {param(query.since_us)}")
    if query.until_us is not None:
        clauses.append(f"time < {param(query.until_us)}")
    if query.after is not None:
        clauses.append(f"(time, id) < ({param(query.after.time_us)}, {param(query.after.id)})")
    if query.match is not None:
        found = search.tsquery(query.match)
        clauses.append("false" if found is None else f"search @@ {param(found)}::tsquery")
    return " AND ".join(clauses) or "true", params
