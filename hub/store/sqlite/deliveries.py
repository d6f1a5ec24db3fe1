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

from pilothouse.hub import clock
from pilothouse.hub.api.schemas import DeliveryAttempt, NotificationDelivery
from pilothouse.hub.errors import NotFound
from pilothouse.hub.store.records import AttemptRecord, DeliveryFilter, DeliveryJob, NewDelivery
from pilothouse.hub.store.sqlite.rows import dumps, loads, placeholders

_COLUMNS = (
    "id, channel_id, policy_id, kind, status, prediction_environment_id, deployment_id, "
    "event_ids, state, attempts, next_attempt_at, last_error, created_at, updated_at"
)
_CHANNEL_GONE = "the channel was deleted"


def add(conn: sqlite3.Connection, new: NewDelivery, attempt: AttemptRecord | None = None) -> None:
    """Store a message to send now, or one already attempted (with that attempt)."""
    conn.execute(
        "INSERT INTO notification_deliveries (id, channel_id, policy_id, kind, status, "
        "prediction_environment_id, deployment_id, event_ids, body, state, max_attempts, "
        "next_attempt_at, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
        (
            new.id,
            new.channel_id,
            new.policy_id,
            new.kind,
            new.status.value,
            new.prediction_environment_id,
            new.deployment_id,
            dumps(new.event_ids),
            new.body,
            new.max_attempts,
            new.created_us,
            new.created_us,
            new.created_us,
        ),
    )
    if attempt is not None:
        record(conn, attempt)


def claim(conn: sqlite3.Connection, now_us: int, lease_us: int, limit: int) -> list[DeliveryJob]:
    """Up to ``limit`` due deliveries, each leased for ``lease_us``."""
    rows = conn.execute(
        "SELECT d.id, d.channel_id, c.type, c.url_sealed, c.secret_sealed, d.body, d.kind, "
        "d.attempts, d.max_attempts FROM notification_deliveries d "
        "LEFT JOIN notification_channels c ON c.id = d.channel_id "
        "WHERE d.state = 'pending' AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at LIMIT ?",
        (now_us, limit),
    ).fetchall()
    jobs, orphans = [], []
    for row in rows:
        if row[2] is None:
            orphans.append((_CHANNEL_GONE, now_us, row[0]))
            continue
        jobs.append(
            DeliveryJob(
                id=row[0],
                channel_id=row[1],
                channel_type=row[2],
                url_sealed=bytes(row[3]),
                secret_sealed=None if row[4] is None else bytes(row[4]),
                body=bytes(row[5]),
                kind=row[6],
                attempts=row[7],
                max_attempts=row[8],
            )
        )
    conn.executemany(
        "UPDATE notification_deliveries SET state = 'failed', last_error = ?, "
        "next_attempt_at = NULL, updated_at = ? WHERE id = ?",
        orphans,
    )
    conn.executemany(
        "UPDATE notification_deliveries SET next_attempt_at = ? WHERE id = ?",
        [(now_us + lease_us, job.id) for job in jobs],
    )
    return jobs


def record(conn: sqlite3.Connection, attempt: AttemptRecord) -> None:
    """Log one attempt and set the delivery's state after it."""
    conn.execute(
        "INSERT OR REPLACE INTO notification_attempts (delivery_id, number, at, duration_ms, "
        "outcome, http_status, error) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            attempt.delivery_id,
            attempt.number,
            attempt.at_us,
            attempt.duration_ms,
            attempt.outcome,
            attempt.http_status,
            attempt.error,
        ),
    )
    conn.execute(
        "UPDATE notification_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, "
        "last_error = ?, updated_at = ? WHERE id = ?",
        (
            attempt.state,
            attempt.number,
            attempt.next_attempt_us if attempt.state == "pending" else None,
            attempt.error,
            attempt.at_us,
            attempt.delivery_id,
        ),
    )


def get(conn: sqlite3.Connection, delivery_id: str) -> NotificationDelivery:
    """One delivery with its attempts, or ``NotFound``."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM notification_deliveries WHERE id = ?", (delivery_id,)
    ).fetchone()
    if row is None:
        raise NotFound.of("notification delivery", delivery_id)
    return _with_attempts(conn, [row])[0]


def page(conn: sqlite3.Connection, query: DeliveryFilter) -> list[NotificationDelivery]:
    """Deliveries matching ``query``, newest first, with their attempts."""
    equal = {
        "channel_id": query.channel_id,
        "policy_id": query.policy_id,
        "deployment_id": query.deployment_id,
        "state": query.state,
        "kind": query.kind,
    }
    clauses = [f"{column} = ?" for column, value in equal.items() if value is not None]
    params: list[Any] = [value for value in equal.values() if value is not None]
    if query.after is not None:
        clauses.append("(created_at, id) < (?, ?)")
        params += [query.after.time_us, query.after.id]
    where = " AND ".join(clauses) or "1"
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM notification_deliveries WHERE {where} "
        "ORDER BY created_at DESC, id DESC LIMIT ?",
        [*params, query.limit],
    ).fetchall()
    return _with_attempts(conn, rows)


def _with_attempts(
    conn: sqlite3.Connection, rows: list[tuple[Any, ...]]
) -> list[NotificationDelivery]:
    ids = [row[0] for row in rows]
    log: dict[str, list[DeliveryAttempt]] = {i: [] for i in ids}
    found = conn.execute(
        "SELECT delivery_id, number, at, duration_ms, outcome, http_status, error "
        f"FROM notification_attempts WHERE delivery_id IN ({placeholders(len(ids))}) "
        "ORDER BY delivery_id, number",
        ids,
    ).fetchall()
    for dlv, number, at, duration_ms, outcome, http_status, error in found:
        log[dlv].append(
            DeliveryAttempt(
                number=number,
                at=clock.from_us(at),
                outcome=outcome,
                http_status=http_status,
                error=error,
                duration_ms=duration_ms,
            )
        )
    return [_delivery(row, log[row[0]]) for row in rows]


def _delivery(row: tuple[Any, ...], attempts: list[DeliveryAttempt]) -> NotificationDelivery:
    return NotificationDelivery(
        id=row[0],
        channel_id=row[1],
        policy_id=row[2],
        kind=row[3],
        status=row[4],
        prediction_environment_id=row[5],
        deployment_id=row[6],
        event_ids=loads(row[7]),
        state=row[8],
        attempts=row[9],
        next_attempt_at=None if row[10] is None else clock.from_us(row[10]),
        last_error=row[11],
        created_at=clock.from_us(row[12]),
        updated_at=clock.from_us(row[13]),
        attempt_log=attempts,
    )
