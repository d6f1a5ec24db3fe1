"""SQL of prediction statistics on PostgreSQL: the same tables and meaning as on SQLite.

See :mod:`pilothouse.hub.store.sqlite.monitoring`. What differs: windows and
associations go in with one ``INSERT … SELECT FROM unnest(…) ON CONFLICT DO
NOTHING`` each; the drift status is changed by a conditional upsert, so of two
replicas judging the same change only one records it (and its event); rolling
up adds window bodies on a worker thread (parsing JSON is CPU work the event
loop must not do) inside the transaction that holds the rows' locks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.hub.api.schemas import EventIn
from pilothouse.hub.store import mapping, rollups
from pilothouse.hub.store.postgres import events, retention
from pilothouse.hub.store.postgres.db import Connection
from pilothouse.hub.store.records import (
    JoinedActual,
    MonitoringState,
    StoredAssociation,
    StoredWindow,
    WindowMerge,
)
from pilothouse.hub.store.rollups import hour_of

_INSERT_WINDOWS = (
    "INSERT INTO monitoring_windows (id, deployment_id, package_id, start_at, end_at, body) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], "
    "$6::text[]) ON CONFLICT (id) DO NOTHING RETURNING id"
)
_INSERT_ASSOCIATIONS = (
    "INSERT INTO monitoring_associations "
    "(deployment_id, association_id, package_id, window_start, prediction) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[]) "
    "ON CONFLICT (deployment_id, association_id) DO NOTHING"
)
_RAW = (
    "SELECT body FROM monitoring_windows WHERE deployment_id = $1 AND body IS NOT NULL "
    "AND start_at >= $2 AND start_at < $3 ORDER BY start_at, id"
)
_HOURLY = (
    "SELECT body FROM monitoring_hourly WHERE deployment_id = $1 AND hour >= $2 AND hour < $3 "
    "ORDER BY hour, package_id"
)
_UNROLLED = (
    "SELECT id, deployment_id, package_id, start_at, body FROM monitoring_windows "
    "WHERE body IS NOT NULL AND start_at < $1 ORDER BY start_at, id LIMIT $2 FOR UPDATE"
)
_HELD_HOUR = (
    "SELECT body FROM monitoring_hourly WHERE deployment_id = $1 AND hour = $2 "
    "AND package_id = $3 FOR UPDATE"
)
_UPSERT_HOUR = (
    "INSERT INTO monitoring_hourly (deployment_id, package_id, hour, body) "
    "VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (deployment_id, hour, package_id) DO UPDATE SET body = excluded.body"
)
_PURGES = (
    "DELETE FROM monitoring_hourly WHERE (deployment_id, hour, package_id) IN (SELECT "
    "deployment_id, hour, package_id FROM monitoring_hourly WHERE hour < $1 "
    "ORDER BY hour LIMIT $2)",
    "DELETE FROM monitoring_windows WHERE id IN "
    "(SELECT id FROM monitoring_windows WHERE start_at < $1 ORDER BY start_at LIMIT $2)",
    "DELETE FROM monitoring_associations WHERE (deployment_id, association_id) IN (SELECT "
    "deployment_id, association_id FROM monitoring_associations WHERE window_start < $1 "
    "ORDER BY window_start LIMIT $2)",
)
_SET_DRIFT = (
    "INSERT INTO monitoring_state AS s (deployment_id, drift_status, drift) VALUES ($1, $2, $3) "
    "ON CONFLICT (deployment_id) DO UPDATE SET drift_status = excluded.drift_status, "
    "drift = excluded.drift WHERE s.drift_status = $4 RETURNING deployment_id"
)
_CLAIM = (
    "INSERT INTO monitoring_state AS s (deployment_id, retrained_at) VALUES ($1, $2) "
    "ON CONFLICT (deployment_id) DO UPDATE SET retrained_at = excluded.retrained_at "
    "WHERE s.retrained_at IS NULL OR s.retrained_at <= $3 RETURNING deployment_id"
)
_ACTUALS = (
    "UPDATE monitoring_associations m SET actual = u.value FROM "
    "unnest($2::text[], $3::text[]) AS u(association_id, value) "
    "WHERE m.deployment_id = $1 AND m.association_id = u.association_id"
)
_JOINED = (
    "SELECT package_id, window_start, prediction, actual FROM monitoring_associations "
    "WHERE deployment_id = $1 AND window_start >= $2 AND window_start < $3 "
    "AND actual IS NOT NULL"
)


async def add(
    conn: Connection,
    windows: Sequence[StoredWindow],
    associations: Sequence[StoredAssociation],
) -> list[str]:
    """Store the windows not stored yet (and their associations); return the new ids."""
    first = {w.id: w for w in reversed(windows)}  # a repeated id counts once, as its first
    rows = [mapping.window_row(w) for w in windows]
    rows = [r for r in rows if first.pop(r[0], None) is not None]
    if not rows:
        return []
    columns = [list(c) for c in zip(*rows, strict=True)]
    fresh = {record[0] for record in await conn.fetch(_INSERT_WINDOWS, *columns)}
    kept = {(a.deployment_id, a.association_id): a for a in associations if a.window_id in fresh}
    if kept:
        assoc_rows = [mapping.association_row(a) for a in kept.values()]
        await conn.execute(_INSERT_ASSOCIATIONS, *[list(c) for c in zip(*assoc_rows, strict=True)])
    return [w.id for w in windows if w.id in fresh]


async def bodies(conn: Connection, deployment_id: str, from_us: int, to_us: int) -> list[str]:
    """Bodies of the deployment's windows starting in ``[from_us, to_us)``: raw, then hourly."""
    raw = await conn.fetch(_RAW, deployment_id, from_us, to_us)
    hourly = await conn.fetch(_HOURLY, deployment_id, hour_of(from_us), to_us)
    return [r[0] for r in raw] + [r[0] for r in hourly]


async def roll_up(conn: Connection, before_us: int, limit: int, merge: WindowMerge) -> int:
    """Move up to ``limit`` unrolled windows older than ``before_us`` into hourly rows."""
    rows = await conn.fetch(_UNROLLED, before_us, limit)
    for (deployment_id, package_id, hour), group in rollups.by_hour(rows).items():
        held = await conn.fetchval(_HELD_HOUR, deployment_id, hour, package_id)
        body = await asyncio.to_thread(merge, [held, *group] if held else group)
        await conn.execute(_UPSERT_HOUR, deployment_id, package_id, hour, body)
    if rows:
        await conn.execute(
            "UPDATE monitoring_windows SET body = NULL WHERE id = ANY($1::text[])",
            [row[0] for row in rows],
        )
    return len(rows)


async def purge(conn: Connection, now_us: int, default_days: int, limit: int) -> int:
    """Remove up to ``limit`` rows of each statistics table older than the retention."""
    days = (await retention.read(conn)).days or default_days
    cutoff = mapping.cutoff(now_us, days)
    removed = 0
    for sql in _PURGES:
        removed += int((await conn.execute(sql, cutoff, limit)).split()[-1])
    return removed


async def state(conn: Connection, deployment_id: str) -> MonitoringState:
    """The deployment's recorded drift status and last retraining trigger."""
    row = await conn.fetchrow(
        "SELECT drift_status, drift, retrained_at FROM monitoring_state WHERE deployment_id = $1",
        deployment_id,
    )
    return mapping.monitoring_state(row)


async def set_drift(
    conn: Connection,
    deployment_id: str,
    expected: Status,
    status: Status,
    detail: dict[str, object],
    event: EventIn,
) -> bool:
    """Record a new drift status and its event, if the status is still ``expected``."""
    if expected is Status.UNKNOWN:  # no row yet, or one with only a retraining time
        await conn.execute(
            "INSERT INTO monitoring_state (deployment_id) VALUES ($1) ON CONFLICT DO NOTHING",
            deployment_id,
        )
    changed = await conn.fetchval(
        _SET_DRIFT, deployment_id, status.value, mapping.dumps(detail), expected.value
    )
    if changed is None:
        return False
    await events.insert(conn, [event])
    return True


async def claim_retraining(
    conn: Connection, deployment_id: str, now_us: int, cooldown_us: int
) -> bool:
    """Note a retraining trigger now, unless one was less than ``cooldown_us`` ago."""
    return await conn.fetchval(_CLAIM, deployment_id, now_us, now_us - cooldown_us) is not None


async def record_actuals(
    conn: Connection, deployment_id: str, actuals: Sequence[tuple[str, str]]
) -> int:
    """Store each actual (association id, JSON value) whose association is known; count them."""
    if not actuals:
        return 0
    latest = dict(actuals)  # the last value given for an id wins, as on SQLite
    done = await conn.execute(_ACTUALS, deployment_id, list(latest), list(latest.values()))
    return int(done.split()[-1])


async def joined(
    conn: Connection, deployment_id: str, from_us: int, to_us: int
) -> list[JoinedActual]:
    """Predictions with their actuals, of windows starting in ``[from_us, to_us)``."""
    rows = await conn.fetch(_JOINED, deployment_id, from_us, to_us)
    return [JoinedActual(row[0], row[1], row[2], row[3]) for row in rows]
