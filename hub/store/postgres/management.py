"""SQL of a PE's *Use Management Agent* switch on PostgreSQL (as :mod:`...sqlite.management`).

Turning it off copies the PE's latest revision and live deployments into
``management_paused`` in the same transaction, and :mod:`.deployments` answers
the agent from that copy while the row exists; turning it on deletes the row.
The PE's row is locked first, as for every change of the PE (:mod:`.deployments`),
so the frozen revision is one no concurrent change can slip under.
"""

from __future__ import annotations

from collections.abc import Callable

from pilothouse.hub.api.schemas import EventIn
from pilothouse.hub.store import mapping
from pilothouse.hub.store.postgres import deployments, environments, events
from pilothouse.hub.store.postgres.db import Connection


async def switch(
    conn: Connection, pe_id: str, enabled: bool, at_us: int, event: Callable[[bool], EventIn]
) -> bool:
    """Turn the PE's management agent on or off; True (and ``event(enabled)`` stored) if changed."""
    await environments.get(conn, pe_id, lock=True)
    paused = await conn.fetchval(
        "SELECT true FROM management_paused WHERE prediction_environment_id = $1", pe_id
    )
    if enabled == (paused is None):
        return False
    if enabled:
        await conn.execute(
            "DELETE FROM management_paused WHERE prediction_environment_id = $1", pe_id
        )
    else:
        revision, live = await deployments.live_state(conn, pe_id)
        snapshot = mapping.frozen(live)
        await conn.execute(
            "INSERT INTO management_paused (prediction_environment_id, revision, snapshot, "
            "paused_at) VALUES ($1, $2, $3, $4)",
            pe_id,
            revision,
            snapshot,
            at_us,
        )
    await events.insert(conn, [event(enabled)])
    return True
