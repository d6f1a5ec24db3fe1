"""SQL of notification policies on PostgreSQL: each is its JSON document, with lookup columns.

Deleting a policy deletes its alert groups and their waiting events (foreign
keys, ``ON DELETE CASCADE``); its past deliveries stay in the log. A policy
locks its channel's row while it is stored, so a channel deleted on another
replica at that moment cannot leave it pointing nowhere.
"""

from __future__ import annotations

from pilothouse.hub import clock
from pilothouse.hub.api.schemas import NotificationPolicy
from pilothouse.hub.errors import NotFound
from pilothouse.hub.store.interface import PolicyChange
from pilothouse.hub.store.postgres import channels
from pilothouse.hub.store.postgres.db import Connection, page_clause, taken
from pilothouse.hub.store.records import PageQuery


async def add(conn: Connection, policy: NotificationPolicy) -> None:
    """Insert a policy (its channel must exist); ``Conflict`` if the name is taken."""
    await _require_channel(conn, policy.channel_id)
    with taken(f"a notification policy named {policy.name!r} exists already"):
        await conn.execute(
            "INSERT INTO notification_policies (id, name, channel_id, enabled, spec, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            policy.id,
            policy.name,
            policy.channel_id,
            policy.enabled,
            policy.model_dump_json(),
            clock.to_us(policy.created_at),
        )


async def get(conn: Connection, policy_id: str, *, lock: bool = False) -> NotificationPolicy:
    """One policy, or ``NotFound``."""
    spec = await conn.fetchval(
        "SELECT spec FROM notification_policies WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        policy_id,
    )
    if spec is None:
        raise NotFound.of("notification policy", policy_id)
    return NotificationPolicy.model_validate_json(spec)


async def page(conn: Connection, query: PageQuery) -> list[NotificationPolicy]:
    """Policies, newest first."""
    tail, params = page_clause(query, "created_at", 1)
    rows = await conn.fetch(f"SELECT spec FROM notification_policies WHERE true{tail}", *params)
    return [NotificationPolicy.model_validate_json(row[0]) for row in rows]


async def enabled(conn: Connection) -> list[NotificationPolicy]:
    """Every enabled policy, oldest first."""
    rows = await conn.fetch(
        "SELECT spec FROM notification_policies WHERE enabled ORDER BY created_at, id"
    )
    return [NotificationPolicy.model_validate_json(row[0]) for row in rows]


async def update(conn: Connection, policy_id: str, change: PolicyChange) -> NotificationPolicy:
    """Apply ``change`` to a stored policy; a disabled policy forgets its alert groups."""
    new = change(await get(conn, policy_id, lock=True))
    await _require_channel(conn, new.channel_id)
    with taken(f"a notification policy named {new.name!r} exists already"):
        await conn.execute(
            "UPDATE notification_policies SET name = $1, channel_id = $2, enabled = $3, "
            "spec = $4 WHERE id = $5",
            new.name,
            new.channel_id,
            new.enabled,
            new.model_dump_json(),
            policy_id,
        )
    if not new.enabled:
        await conn.execute("DELETE FROM notification_groups WHERE policy_id = $1", policy_id)
    return new


async def delete(conn: Connection, policy_id: str) -> None:
    """Delete a policy and its alert groups."""
    await get(conn, policy_id, lock=True)
    await conn.execute("DELETE FROM notification_policies WHERE id = $1", policy_id)


async def _require_channel(conn: Connection, channel_id: str) -> None:
    if await channels.find(conn, channel_id, lock=True) is None:
        raise NotFound.of("notification channel", channel_id, "channel_id")
