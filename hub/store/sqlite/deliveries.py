"""SQL of deliveries: messages waiting to be sent, claimed one attempt at a time, and their log.

A claim moves a due delivery's ``next_attempt_at`` one lease ahead in the same
transaction, so the dispatcher never sends it twice at once and a hub that
stops mid-attempt tries again when the lease runs out. Each attempt's outcome
is a row of ``notification_attempts`` and sets the delivery's state: delivered,
pending (with the time of the next attempt) or failed. A delivery whose channel
was deleted fails at its next claim.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from pilothouse.hub.api.schemas import NotificationDelivery
from pilothouse.hub.errors import NotFound
from pilothouse.hub.store import notification_mapping
from pilothouse.hub.store.records import AttemptRecord, DeliveryFilter, DeliveryJob, NewDelivery
from pilothouse.hub.store.sqlite.rows import placeholders


def add(conn: sqlite3.Connection, new: NewDelivery, attempt: AttemptRecord | None = None) -> None:
    """Store a message to send now, or one already attempted (with that attempt)."""
    conn.execute(
        f"INSERT INTO notification_deliveries (state, {notification_mapping.NEW_DELIVERY_COLUMNS}) "
        f"VALUES ('pending', {placeholders(13)})",
        notification_mapping.new_delivery_row(new),
    )
    if attempt is not None:
        record(conn, attempt)


def claim(conn: sqlite3.Connection, now_us: int, lease_us: int, limit: int) -> list[DeliveryJob]:
    """Up to ``limit`` due deliveries, each leased for ``lease_us``."""
    rows = conn.execute(
        f"SELECT {notification_mapping.CLAIM_COLUMNS} FROM notification_deliveries d "
        "LEFT JOIN notification_channels c ON c.id = d.channel_id "
        "WHERE d.state = 'pending' AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at LIMIT ?",
        (now_us, limit),
    ).fetchall()
    jobs, orphans = notification_mapping.claimed(rows)
    conn.executemany(
        "UPDATE notification_deliveries SET state = 'failed', last_error = ?, "
        "next_attempt_at = NULL, updated_at = ? WHERE id = ?",
        [(notification_mapping.CHANNEL_GONE, now_us, orphan) for orphan in orphans],
    )
    conn.executemany(
        "UPDATE notification_deliveries SET next_attempt_at = ? WHERE id = ?",
        [(now_us + lease_us, job.id) for job in jobs],
    )
    return jobs


def record(conn: sqlite3.Connection, attempt: AttemptRecord) -> None:
    """Log one attempt and set the delivery's state after it."""
    conn.execute(
        f"INSERT OR REPLACE INTO notification_attempts ({notification_mapping.ATTEMPT_COLUMNS}) "
        f"VALUES ({placeholders(7)})",
        notification_mapping.attempt_row(attempt),
    )
    conn.execute(
        "UPDATE notification_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, "
        "last_error = ?, updated_at = ? WHERE id = ?",
        notification_mapping.attempt_outcome(attempt),
    )


def get(conn: sqlite3.Connection, delivery_id: str) -> NotificationDelivery:
    """One delivery with its attempts, or ``NotFound``."""
    row = conn.execute(
        f"SELECT {notification_mapping.DELIVERY_COLUMNS} FROM notification_deliveries WHERE id = ?",
        (delivery_id,),
    ).fetchone()
    if row is None:
        raise NotFound.of("notification delivery", delivery_id)
    return _with_attempts(conn, [row])[0]


def page(conn: sqlite3.Connection, query: DeliveryFilter) -> list[NotificationDelivery]:
    """Deliveries matching ``query``, newest first, with their attempts."""
    equal = notification_mapping.delivery_equalities(query)
    clauses = [f"{column} = ?" for column, value in equal.items() if value is not None]
    params: list[Any] = [value for value in equal.values() if value is not None]
    if query.after is not None:
        clauses.append("(created_at, id) < (?, ?)")
        params += [query.after.time_us, query.after.id]
    where = " AND ".join(clauses) or "1"
    rows = conn.execute(
        f"SELECT {notification_mapping.DELIVERY_COLUMNS} FROM notification_deliveries "
        f"WHERE {where} "
        "ORDER BY created_at DESC, id DESC LIMIT ?",
        [*params, query.limit],
    ).fetchall()
    return _with_attempts(conn, rows)


def _with_attempts(
    conn: sqlite3.Connection, rows: list[tuple[Any, ...]]
) -> list[NotificationDelivery]:
    ids = [row[0] for row in rows]
    found = conn.execute(
        f"SELECT {notification_mapping.ATTEMPT_COLUMNS} "
        f"FROM notification_attempts WHERE delivery_id IN ({placeholders(len(ids))}) "
        "ORDER BY delivery_id, number",
        ids,
    ).fetchall()
    log = notification_mapping.attempt_logs(ids, found)
    return [notification_mapping.delivery(row, log[row[0]]) for row in rows]
