"""SQL of notification channels on PostgreSQL: their sealed URL and secret, and the masked URL."""

from __future__ import annotations

from pilothouse.hub.api.schemas import NotificationChannel
from pilothouse.hub.errors import Conflict, NotFound
from pilothouse.hub.store import notification_mapping
from pilothouse.hub.store.interface import ChannelChange
from pilothouse.hub.store.postgres.db import Connection, page_clause, taken
from pilothouse.hub.store.records import ChannelRecord, PageQuery


async def add(conn: Connection, record: ChannelRecord) -> None:
    """Insert a channel; ``Conflict`` if the name is taken."""
    channel = record.channel
    with taken(f"a notification channel named {channel.name!r} exists already"):
        await conn.execute(
            f"INSERT INTO notification_channels ({notification_mapping.CHANNEL_COLUMNS}) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            *notification_mapping.channel_row(record),
        )


async def get(conn: Connection, channel_id: str, *, lock: bool = False) -> ChannelRecord:
    """One channel, or ``NotFound`` (``lock``: hold its row until the transaction ends)."""
    row = await conn.fetchrow(
        f"SELECT {notification_mapping.CHANNEL_COLUMNS} FROM notification_channels WHERE id = $1"
        + (" FOR UPDATE" if lock else ""),
        channel_id,
    )
    if row is None:
        raise NotFound.of("notification channel", channel_id)
    return notification_mapping.channel(row)


async def find(conn: Connection, channel_id: str, *, lock: bool = False) -> ChannelRecord | None:
    """One channel, or None."""
    try:
        return await get(conn, channel_id, lock=lock)
    except NotFound:
        return None


async def page(conn: Connection, query: PageQuery) -> list[NotificationChannel]:
    """Channels, newest first."""
    tail, params = page_clause(query, "created_at", 1)
    rows = await conn.fetch(
        f"SELECT {notification_mapping.CHANNEL_COLUMNS} FROM notification_channels "
        f"WHERE true{tail}",
        *params,
    )
    return [notification_mapping.channel(row).channel for row in rows]


async def update(conn: Connection, channel_id: str, change: ChannelChange) -> ChannelRecord:
    """Apply ``change`` to a stored channel."""
    new = change(await get(conn, channel_id, lock=True))
    with taken(f"a notification channel named {new.channel.name!r} exists already"):
        await conn.execute(
            "UPDATE notification_channels SET name = $1, url_shown = $2, secret_sealed = $3, "
            "updated_at = $4, url_sealed = $5 WHERE id = $6",
            *notification_mapping.channel_update(new, channel_id),
        )
    return new


async def delete(conn: Connection, channel_id: str) -> None:
    """Delete a channel; ``Conflict`` while a policy sends to it."""
    await get(conn, channel_id, lock=True)
    users = await conn.fetch(
        "SELECT name FROM notification_policies WHERE channel_id = $1 ORDER BY name LIMIT 5",
        channel_id,
    )
    if users:
        names = ", ".join(repr(row[0]) for row in users)
        raise Conflict(f"notification policies send to this channel: {names}; change them first")
    await conn.execute("DELETE FROM notification_channels WHERE id = $1", channel_id)
