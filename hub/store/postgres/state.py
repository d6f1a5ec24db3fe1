"""Single values the hub keeps in ``hub_state``: the routing cursor, retention, the last purge.

Each value is JSON under a fixed key; a missing key reads as None. The routing
cursor is ``[tx, seq]`` here (see :mod:`.migrations`): the transaction id, as
text, and the sequence number of the last event routed.
"""

from __future__ import annotations

from typing import Any

from pilothouse.hub.store import mapping
from pilothouse.hub.store.postgres.db import Connection

ROUTED_SEQ = "routed_seq"
RETENTION = "retention"
LAST_PURGE = "last_purge"


async def get(conn: Connection, key: str, *, lock: bool = False) -> Any:
    """The value under ``key``, or None (``lock``: hold the row until the transaction ends)."""
    suffix = " FOR UPDATE" if lock else ""
    text = await conn.fetchval("SELECT value FROM hub_state WHERE key = $1" + suffix, key)
    return None if text is None else mapping.loads(text)


async def put(conn: Connection, key: str, value: Any) -> None:
    """Store ``value`` under ``key``."""
    await conn.execute(
        "INSERT INTO hub_state (key, value) VALUES ($1, $2) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        key,
        mapping.dumps(value),
    )


async def routed(conn: Connection, *, lock: bool = False) -> tuple[int, int]:
    """The routing cursor: the transaction id and ``seq`` of the last event routed."""
    found = await get(conn, ROUTED_SEQ, lock=lock) or ["0", 0]
    return int(found[0]), int(found[1])


async def set_routed(conn: Connection, tx: int, seq: int) -> None:
    """Move the routing cursor."""
    await put(conn, ROUTED_SEQ, [str(tx), seq])
