"""SQL of a PE's *Use Management Agent* switch.

Turning it off freezes what the PE's agent sees: the PE's latest revision and
its live deployments are copied into ``management_paused`` in the same
transaction, and :mod:`.deployments` answers the agent from that copy while
the row exists. Turning it on deletes the row; the change log was written all
along, so the watch streams replay what changed meanwhile. Either way one
event records who did what; switching to the state it is in already changes
nothing and records nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from pilothouse.hub.api.schemas import EventIn
from pilothouse.hub.store import mapping
from pilothouse.hub.store.sqlite import deployments, environments, events


def switch(
    conn: sqlite3.Connection,
    pe_id: str,
    enabled: bool,
    at_us: int,
    event: Callable[[bool], EventIn],
) -> bool:
    """Turn the PE's management agent on or off; True (and ``event(enabled)`` stored) if changed."""
    environments.get(conn, pe_id)
    paused = conn.execute(
        "SELECT 1 FROM management_paused WHERE prediction_environment_id = ?", (pe_id,)
    ).fetchone()
    if enabled == (paused is None):
        return False
    if enabled:
        conn.execute("DELETE FROM management_paused WHERE prediction_environment_id = ?", (pe_id,))
    else:
        revision, live = deployments.live_state(conn, pe_id)
        snapshot = mapping.frozen(live)
        conn.execute(
            "INSERT INTO management_paused (prediction_environment_id, revision, snapshot, "
            "paused_at) VALUES (?, ?, ?, ?)",
            (pe_id, revision, snapshot, at_us),
        )
    events.insert(conn, [event(enabled)])
    return True
