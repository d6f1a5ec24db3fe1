"""Single values the hub keeps in ``hub_state``: the routing cursor, retention, the last purge.

Each value is JSON under a fixed key; a missing key reads as None.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from pilothouse.hub.store import mapping

ROUTED_SEQ = "routed_seq"
RETENTION = "retention"
LAST_PURGE = "last_purge"


def get(conn: sqlite3.Connection, key: str) -> Any:
    """The value under ``key``, or None."""
    row = conn.execute("SELECT value FROM hub_state WHERE key = ?", (key,)).fetchone()
    return None if row is None else mapping.loads(row[0])


def put(conn: sqlite3.Connection, key: str, value: Any) -> None:
    """Store ``value`` under ``key``."""
    conn.execute(
        "INSERT INTO hub_state (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, mapping.dumps(value)),
    )
