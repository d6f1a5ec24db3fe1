"""SQL of notification channels: their sealed URL and secret, and the masked URL shown."""

from __future__ import annotations

import sqlite3

from pilothouse.hub.api.schemas import NotificationChannel
from pilothouse.hub.errors import Conflict, NotFound
from pilothouse.hub.store import notification_mapping
from pilothouse.hub.store.interface import ChannelChange
from pilothouse.hub.store.records import ChannelRecord, PageQuery
from pilothouse.hub.store.sqlite.rows import page_clause, taken


def add(conn: sqlite3.Connection, record: ChannelRecord) -> None:
    """Insert a channel; ``Conflict`` if the name is taken."""
    channel = record.channel
    with taken(f"a notification channel named {channel.name!r} exists already"):
        conn.execute(
            f"INSERT INTO notification_channels ({notification_mapping.CHANNEL_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            notification_mapping.channel_row(record),
        )


def get(conn: sqlite3.Connection, channel_id: str) -> ChannelRecord:
    """One channel, or ``NotFound``."""
    row = conn.execute(
        f"SELECT {notification_mapping.CHANNEL_COLUMNS} FROM notification_channels WHERE id = ?",
        (channel_id,),
    ).fetchone()
    if row is None:
        raise NotFound.of("notification channel", channel_id)
    return notification_mapping.channel(row)


def find(conn: sqlite3.Connection, channel_id: str) -> ChannelRecord | None:
    """One channel, or None."""
    try:
        return get(conn, channel_id)
    except NotFound:
        return None


def page(conn: sqlite3.Connection, query: PageQuery) -> list[NotificationChannel]:
    """Channels, newest first."""
    tail, params = page_clause(query, "created_at")
    rows = conn.execute(
        f"SELECT {notification_mapping.CHANNEL_COLUMNS} FROM notification_channels WHERE 1{tail}",
        params,
    )
    return [notification_mapping.channel(row).channel for row in rows.fetchall()]


def update(conn: sqlite3.Connection, channel_id: str, change: ChannelChange) -> ChannelRecord:
    """Apply ``change`` to a stored channel."""
    new = change(get(conn, channel_id))
    with taken(f"a notification channel named {new.channel.name!r} exists already"):
        conn.execute(
            "UPDATE notification_channels SET name = ?, url_shown = ?, secret_sealed = ?, "
            "updated_at = ?, url_sealed = ? WHERE id = ?",
            notification_mapping.channel_update(new, channel_id),
        )
    return new


def delete(conn: sqlite3.Connection, channel_id: str) -> None:
    """Delete a channel; ``Conflict`` while a policy sends to it."""
    get(conn, channel_id)
    users = conn.execute(
        "SELECT name FROM notification_policies WHERE channel_id = ? ORDER BY name LIMIT 5",
        (channel_id,),
    ).fetchall()
    if users:
        names = ", ".join(repr(row[0]) for row in users)
        raise Conflict(f"notification policies send to this channel: {names}; change them first")
    conn.execute("DELETE FROM notification_channels WHERE id = ?", (channel_id,))
