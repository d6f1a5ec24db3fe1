"""SQL of deliveries on PostgreSQL: messages waiting to be sent, claimed an attempt at a time.

As on SQLite, a claim moves a due delivery's ``next_attempt_at`` one lease
ahead in its transaction; here it also skips rows another transaction holds
(``FOR UPDATE SKIP LOCKED``), so two dispatchers never claim one message, and
records who claimed it (``claimed_by``: the claiming replica). When a replica
acquires the background work it releases every claim at once
(:func:`release_claims`): no send of its own is under way yet, so each claim is
a former holder's (or its own, from before it lost the lease), and its message
is due again now instead of when its claim runs out — sent at least once,
possibly twice if the old holder died between sending and recording.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from pilothouse.hub.api.schemas import NotificationDelivery
from pilothouse.hub.errors import NotFound
from pilothouse.hub.store import notification_mapping
from pilothouse.hub.store.postgres.db import Connection
from pilothouse.hub.store.records import AttemptRecord, DeliveryFilter, DeliveryJob, NewDelivery


async def add(conn: Connection, new: NewDelivery, attempt: AttemptRecord | None = None) -> None:
    """Store a message to send now, or one already attempted (with that attempt)."""
    await conn.execute(
        f"INSERT INTO notification_deliveries (state, {notification_mapping.NEW_DELIVERY_COLUMNS}) "
        "VALUES ('pending', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        *notification_mapping.new_delivery_row(new),
    )
    if attempt is not None:
        await record(conn, attempt)


async def claim(
    conn: Connection, now_us: int, lease_us: int, limit: int, claimer: str
) -> list[DeliveryJob]:
    """Up to ``limit`` due deliveries, each leased for ``lease_us`` to ``claimer``."""
    rows = await conn.fetch(
        f"SELECT {notification_mapping.CLAIM_COLUMNS} FROM notification_deliveries d "
        "LEFT JOIN notification_channels c ON c.id = d.channel_id "
        "WHERE d.state = 'pending' AND d.next_attempt_at <= $1 ORDER BY d.next_attempt_at "
        "LIMIT $2 FOR UPDATE OF d SKIP LOCKED",
        now_us,
        limit,
    )
    jobs, orphans = notification_mapping.claimed(rows)
    if orphans:
        await conn.execute(
            "UPDATE notification_deliveries SET state = 'failed', last_error = $1, "
            "next_attempt_at = NULL, updated_at = $2, claimed_by = NULL WHERE id = any($3::text[])",
            notification_mapping.CHANNEL_GONE,
            now_us,
            orphans,
        )
    if jobs:
        await conn.execute(
            "UPDATE notification_deliveries SET next_attempt_at = $1, claimed_by = $2 "
            "WHERE id = any($3::text[])",
            now_us + lease_us,
            claimer,
            [job.id for job in jobs],
        )
    return jobs


async def release_claims(conn: Connection, now_us: int) -> int:
    """Make every claimed delivery due now (call before any send starts); return how many."""
    done = await conn.execute(
        "UPDATE notification_deliveries SET next_attempt_at = $1, claimed_by = NULL "
        "WHERE state = 'pending' AND claimed_by IS NOT NULL",
        now_us,
    )
    return int(done.split()[-1])


async def record(conn: Connection, attempt: AttemptRecord) -> None:
    """Log one attempt and set the delivery's state after it."""
    await conn.execute(
        f"INSERT INTO notification_attempts ({notification_mapping.ATTEMPT_COLUMNS}) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (delivery_id, number) DO UPDATE SET at = excluded.at, "
        "duration_ms = excluded.duration_ms, outcome = excluded.outcome, "
        "http_status = excluded.http_status, error = excluded.error",
        *notification_mapping.attempt_row(attempt),
    )
    await conn.execute(
        "UPDATE notification_deliveries SET state = $1, attempts = $2, next_attempt_at = $3, "
        "last_error = $4, updated_at = $5, claimed_by = NULL WHERE id = $6",
        *notification_mapping.attempt_outcome(attempt),
    )


async def get(conn: Connection, delivery_id: str) -> NotificationDelivery:
    """One delivery with its attempts, or ``NotFound``."""
    row = await conn.fetchrow(
        f"SELECT {notification_mapping.DELIVERY_COLUMNS} FROM notification_deliveries "
        "WHERE id = $1",
        delivery_id,
    )
    if row is None:
        raise NotFound.of("notification delivery", delivery_id)
    return (await _with_attempts(conn, [row]))[0]


async def page(conn: Connection, query: DeliveryFilter) -> list[NotificationDelivery]:
    """Deliveries matching ``query``, newest first, with their attempts."""
    equal = notification_mapping.delivery_equalities(query)
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in equal.items():
        if value is not None:
            params.append(value)
            clauses.append(f"{column} = ${len(params)}")
    if query.after is not None:
        params += [query.after.time_us, query.after.id]
        clauses.append(f"(created_at, id) < (${len(params) - 1}, ${len(params)})")
    where = " AND ".join(clauses) or "true"
    rows = await conn.fetch(
        f"SELECT {notification_mapping.DELIVERY_COLUMNS} FROM notification_deliveries "
        f"WHERE {where} "
        f"ORDER BY created_at DESC, id DESC LIMIT ${len(params) + 1}",
        *params,
        query.limit,
    )
    return await _with_attempts(conn, rows)


async def _with_attempts(
    conn: Connection, rows: list[asyncpg.Record]
) -> list[NotificationDelivery]:
    ids = [row[0] for row in rows]
    found = await conn.fetch(
        f"SELECT {notification_mapping.ATTEMPT_COLUMNS} "
        "FROM notification_attempts WHERE delivery_id = any($1::text[]) "
        "ORDER BY delivery_id, number",
        ids,
    )
    log = notification_mapping.attempt_logs(ids, found)
    return [notification_mapping.delivery(row, log[row[0]]) for row in rows]
