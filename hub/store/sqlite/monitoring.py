"""SQL of prediction statistics: windows, hourly rollups, associations, drift state.

A window is inserted once by id (``INSERT OR IGNORE``); its associations only
when the window itself was new, so a batch delivered twice stores nothing the
second time. Rolling up moves the oldest unrolled windows into their hour's
row of ``monitoring_hourly`` (adding to what the hour holds already) and keeps
the window's id with a NULL body, in one transaction: a window is counted in
exactly one of the two tables at any moment. The purge removes hourly rows,
window ids and associations older than the event retention, in batches.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.hub.api.schemas import EventIn
from pilothouse.hub.store import mapping, rollups
from pilothouse.hub.store.records import (
    JoinedActual,
    MonitoringState,
    StoredAssociation,
    StoredWindow,
    WindowMerge,
)
from pilothouse.hub.store.rollups import hour_of
from pilothouse.hub.store.sqlite import events, retention

_INSERT_WINDOW = (
    "INSERT OR IGNORE INTO monitoring_windows "
    "(id, deployment_id, package_id, start_at, end_at, body) VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_ASSOCIATION = (
    "INSERT OR IGNORE INTO monitoring_associations "
    "(deployment_id, association_id, package_id, window_start, prediction) VALUES (?, ?, ?, ?, ?)"
)
_RAW = (
    "SELECT body FROM monitoring_windows WHERE deployment_id = ? AND body IS NOT NULL "
    "AND start_at >= ? AND start_at < ? ORDER BY start_at, id"
)
_HOURLY = (
    "SELECT body FROM monitoring_hourly WHERE deployment_id = ? AND hour >= ? AND hour < ? "
    "ORDER BY hour, package_id"
)
_UNROLLED = (
    "SELECT id, deployment_id, package_id, start_at, body FROM monitoring_windows "
    "WHERE body IS NOT NULL AND start_at < ? ORDER BY start_at, id LIMIT ?"
)
_UPSERT_HOUR = (
    "INSERT INTO monitoring_hourly (deployment_id, package_id, hour, body) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (deployment_id, hour, package_id) DO UPDATE SET body = excluded.body"
)
_PURGES = (
    "DELETE FROM monitoring_hourly WHERE (deployment_id, hour, package_id) IN (SELECT "
    "deployment_id, hour, package_id FROM monitoring_hourly WHERE hour < ? ORDER BY hour LIMIT ?)",
    "DELETE FROM monitoring_windows WHERE id IN "
    "(SELECT id FROM monitoring_windows WHERE start_at < ? ORDER BY start_at LIMIT ?)",
    "DELETE FROM monitoring_associations WHERE (deployment_id, association_id) IN (SELECT "
    "deployment_id, association_id FROM monitoring_associations WHERE window_start < ? "
    "ORDER BY window_start LIMIT ?)",
)
_JOINED = (
    "SELECT package_id, window_start, prediction, actual FROM monitoring_associations "
    "WHERE deployment_id = ? AND window_start >= ? AND window_start < ? AND actual IS NOT NULL"
)


def add(
    conn: sqlite3.Connection,
    windows: Sequence[StoredWindow],
    associations: Sequence[StoredAssociation],
) -> list[str]:
    """Store the windows not stored yet (and their associations); return the new ids."""
    new: list[str] = []
    for w in windows:
        row = mapping.window_row(w)
        if conn.execute(_INSERT_WINDOW, row).rowcount:
            new.append(w.id)
    fresh = set(new)
    conn.executemany(
        _INSERT_ASSOCIATION,
        [mapping.association_row(a) for a in associations if a.window_id in fresh],
    )
    return new


def bodies(conn: sqlite3.Connection, deployment_id: str, from_us: int, to_us: int) -> list[str]:
    """Bodies of the deployment's windows starting in ``[from_us, to_us)``: raw, then hourly."""
    raw = conn.execute(_RAW, (deployment_id, from_us, to_us)).fetchall()
    hourly = conn.execute(_HOURLY, (deployment_id, hour_of(from_us), to_us)).fetchall()
    # An hourly row holds windows that started in its hour: keep it if its first did in range.
    return [r[0] for r in raw] + [r[0] for r in hourly]


def roll_up(conn: sqlite3.Connection, before_us: int, limit: int, merge: WindowMerge) -> int:
    """Move up to ``limit`` unrolled windows older than ``before_us`` into hourly rows."""
    rows = conn.execute(_UNROLLED, (before_us, limit)).fetchall()
    for (deployment_id, package_id, hour), group in rollups.by_hour(rows).items():
        held = conn.execute(
            "SELECT body FROM monitoring_hourly WHERE deployment_id = ? AND hour = ? "
            "AND package_id = ?",
            (deployment_id, hour, package_id),
        ).fetchone()
        body = merge([held[0], *group] if held else group)
        conn.execute(_UPSERT_HOUR, (deployment_id, package_id, hour, body))
    conn.executemany(
        "UPDATE monitoring_windows SET body = NULL WHERE id = ?", [(r[0],) for r in rows]
    )
    return len(rows)


def purge(conn: sqlite3.Connection, now_us: int, default_days: int, limit: int) -> int:
    """Remove up to ``limit`` rows of each statistics table older than the retention."""
    days = retention.read(conn).days or default_days
    cutoff = mapping.cutoff(now_us, days)
    return sum(conn.execute(sql, (cutoff, limit)).rowcount for sql in _PURGES)


def state(conn: sqlite3.Connection, deployment_id: str) -> MonitoringState:
    """The deployment's recorded drift status and last retraining trigger."""
    row = conn.execute(
        "SELECT drift_status, drift, retrained_at FROM monitoring_state WHERE deployment_id = ?",
        (deployment_id,),
    ).fetchone()
    return mapping.monitoring_state(row)


def set_drift(
    conn: sqlite3.Connection,
    deployment_id: str,
    expected: Status,
    status: Status,
    detail: dict[str, object],
    event: EventIn,
) -> bool:
    """Record a new drift status and its event, if the status is still ``expected``."""
    if state(conn, deployment_id).drift_status != expected:
        return False
    conn.execute(
        "INSERT INTO monitoring_state (deployment_id, drift_status, drift) VALUES (?, ?, ?) "
        "ON CONFLICT (deployment_id) DO UPDATE SET drift_status = excluded.drift_status, "
        "drift = excluded.drift",
        (deployment_id, status.value, mapping.dumps(detail)),
    )
    events.insert(conn, [event])
    return True


def claim_retraining(
    conn: sqlite3.Connection, deployment_id: str, now_us: int, cooldown_us: int
) -> bool:
    """Note a retraining trigger now, unless one was less than ``cooldown_us`` ago."""
    last = state(conn, deployment_id).retrained_us
    if last is not None and now_us - last < cooldown_us:
        return False
    conn.execute(
        "INSERT INTO monitoring_state (deployment_id, retrained_at) VALUES (?, ?) "
        "ON CONFLICT (deployment_id) DO UPDATE SET retrained_at = excluded.retrained_at",
        (deployment_id, now_us),
    )
    return True


def record_actuals(
    conn: sqlite3.Connection, deployment_id: str, actuals: Sequence[tuple[str, str]]
) -> int:
    """Store each actual (association id, JSON value) whose association is known; count them."""
    done = conn.executemany(
        "UPDATE monitoring_associations SET actual = ? WHERE deployment_id = ? "
        "AND association_id = ?",
        [(value, deployment_id, association_id) for association_id, value in actuals],
    )
    return int(done.rowcount)


def joined(
    conn: sqlite3.Connection, deployment_id: str, from_us: int, to_us: int
) -> list[JoinedActual]:
    """Predictions with their actuals, of windows starting in ``[from_us, to_us)``."""
    rows = conn.execute(_JOINED, (deployment_id, from_us, to_us)).fetchall()
    return [JoinedActual(*row) for row in rows]
