"""SQL of events on PostgreSQL: idempotent batch ingest, filtered newest-first pages, search.

Ingest is one ``INSERT … SELECT FROM unnest(…) ON CONFLICT (id) DO NOTHING``
per batch — one round trip whatever its size, and a retried batch adds nothing
— returning the ``seq`` of each new row, given in the batch's order; then one
upsert of each deployment's latest status per source, by ingest order
(``seq``) as on SQLite, in key order. Two replicas storing overlapping batches
at once (an agent's retry) may deadlock on the event ids; PostgreSQL breaks the
tie and the loser's transaction runs again (:class:`~.db.Database`).
The words to search are extracted in Python (:mod:`.search`) and indexed by
PostgreSQL as a ``tsvector``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from pilothouse.foundation.domain.vocabulary import Source, Status
from pilothouse.hub import clock
from pilothouse.hub.api.schemas import EventIn, EventOut
from pilothouse.hub.store.postgres import search
from pilothouse.hub.store.postgres.db import Connection, dumps, loads
from pilothouse.hub.store.records import EventFilter, SourceStatus

COLUMNS = "id, time, prediction_environment_id, deployment_id, source, type, status, message, data"
_INSERT = (
    f"INSERT INTO events ({COLUMNS}, search) "
    "SELECT i, t, p, d, s, ty, st, m, da, to_tsvector('simple', w) FROM unnest("
    "$1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
    "$8::text[], $9::text[], $10::text[]) AS u(i, t, p, d, s, ty, st, m, da, w) "
    "ON CONFLICT (id) DO NOTHING RETURNING id, seq"
)
_UPSERT_HEALTH = (
    "INSERT INTO health_sources (deployment_id, source, status, message, event_id, time, seq) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
    "$6::bigint[], $7::bigint[]) "
    "ON CONFLICT (deployment_id, source) DO UPDATE SET "
    "status = excluded.status, message = excluded.message, "
    "event_id = excluded.event_id, time = excluded.time, seq = excluded.seq "
    "WHERE excluded.seq > health_sources.seq"
)

Row = tuple[str, int, str, str | None, str, str, str, str, str]


async def insert(conn: Connection, events: Sequence[EventIn]) -> int:
    """Store the events whose id is new; return how many were."""
    first: dict[str, Row] = {}
    for row in map(_row, events):
        first.setdefault(row[0], row)  # a repeated id counts once, as its first occurrence
    if not first:
        return 0
    rows = list(first.values())  # in the batch's order: ``seq`` is the order of ingest
    columns = [list(column) for column in zip(*rows, strict=True)]
    columns.append([search.document(row[7], row[8]) for row in rows])
    stored = {record[0]: record[1] for record in await conn.fetch(_INSERT, *columns)}
    if stored:
        latest = _latest_per_source(rows, stored)
        if latest:
            await conn.execute(_UPSERT_HEALTH, *[list(c) for c in zip(*latest, strict=True)])
    return len(stored)


async def select(conn: Connection, query: EventFilter) -> list[EventOut]:
    """One page of events matching ``query``, newest first."""
    where_sql, params = where(query)
    sql = (
        f"SELECT {COLUMNS} FROM events WHERE {where_sql} "
        f"ORDER BY time DESC, id DESC LIMIT ${len(params) + 1}"
    )
    return [from_row(row) for row in await conn.fetch(sql, *params, query.limit)]


async def health_sources(
    conn: Connection, deployment_ids: Sequence[str]
) -> dict[str, list[SourceStatus]]:
    """The latest status per source of each deployment."""
    out: dict[str, list[SourceStatus]] = {d: [] for d in deployment_ids}
    if not out:
        return out
    rows = await conn.fetch(
        "SELECT deployment_id, source, status, message, event_id, time, seq FROM health_sources "
        "WHERE deployment_id = any($1::text[])",
        list(out),
    )
    for dep, source, status, message, event_id, time_us, seq in rows:
        out[dep].append(
            SourceStatus(Source(source), Status(status), message, event_id, time_us, seq)
        )
    return out


def _row(event: EventIn) -> Row:
    return (
        event.id,
        clock.to_us(event.time),
        event.prediction_environment_id,
        event.deployment_id,
        event.source.value,
        event.type,
        event.status.value,
        event.message,
        dumps(event.data),
    )


def _latest_per_source(rows: list[Row], stored: dict[str, int]) -> list[tuple[Any, ...]]:
    """Per (deployment, source), the status event this batch stored last (``stored``: new ids)."""
    latest: dict[tuple[str, str], tuple[int, Row]] = {}
    for row in rows:
        dep, status, seq = row[3], row[6], stored.get(row[0])
        if dep is None or status == Status.INFORMATIONAL or seq is None:
            continue  # no deployment, no status, or a duplicate stored before
        known = latest.get((dep, row[4]))
        if known is None or seq > known[0]:
            latest[(dep, row[4])] = (seq, row)
    return sorted((r[3], r[4], r[6], r[7], r[0], r[1], seq) for seq, r in latest.values())


def where(query: EventFilter, first: int = 1) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause of ``query`` (placeholders from ``$first``) and its parameters."""
    equal = {
        "prediction_environment_id": query.prediction_environment_id,
        "deployment_id": query.deployment_id,
        "status": query.status,
        "type": query.type,
        "source": query.source,
    }
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
        clauses.append(
            "false" if found is None else f"search @@ to_tsquery('simple', {param(found)})"
        )
    return " AND ".join(clauses) or "true", params


def from_row(row: asyncpg.Record | tuple[Any, ...]) -> EventOut:
    """An event from a row of ``COLUMNS``."""
    return EventOut.model_construct(
        id=row[0],
        time=clock.from_us(row[1]),
        prediction_environment_id=row[2],
        deployment_id=row[3],
        source=Source(row[4]),
        type=row[5],
        status=Status(row[6]),
        message=row[7],
        data=loads(row[8]),
    )
