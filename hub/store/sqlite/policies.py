"""SQL of notification policies: each is its JSON document, looked up by id, name and channel.

Deleting a policy deletes its alert groups and their waiting events (foreign
keys, ``ON DELETE CASCADE``); its past deliveries stay in the log.
"""

from __future__ import annotations

import sqlite3

from pilothouse.hub import clock
from pilothouse.hub.api.schemas import NotificationPolicy
from pilothouse.hub.errors import NotFound
from pilothouse.hub.store.interface import PolicyChange
from pilothouse.hub.store.records import PageQuery
from pilothouse.hub.store.sqlite import channels
from pilothouse.hub.store.sqlite.rows import page_clause, taken


def add(conn: sqlite3.Connection, policy: NotificationPolicy) -> None:
    """Insert a policy (its channel must exist); ``Conflict`` if the name is taken."""
    _require_channel(conn, policy.channel_id)
    with taken(f"a notification policy named {policy.name!r} exists already"):
        conn.execute(
            "INSERT INTO notification_policies (id, name, channel_id, enabled, spec, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                policy.id,
                policy.name,
                policy.channel_id,
                int(policy.enabled),
                policy.model_dump_json(),
                clock.to_us(policy.created_at),
            ),
        )


def get(conn: sqlite3.Connection, policy_id: str) -> NotificationPolicy:
    """One policy, or ``NotFound``."""
    row = conn.execute(
        "SELECT spec FROM notification_policies WHERE id = ?", (policy_id,)
    ).fetchone()
    if row is None:
        raise NotFound.of("notification policy", policy_id)
    return NotificationPolicy.model_validate_json(row[0])


def page(conn: sqlite3.Connection, query: PageQuery) -> list[NotificationPolicy]:
    """Policies, newest first."""
    tail, params = page_clause(query, "created_at")
    rows = conn.execute(f"SELECT spec FROM notification_policies WHERE 1{tail}", params)
    return [NotificationPolicy.model_validate_json(row[0]) for row in rows.fetchall()]


def enabled(conn: sqlite3.Connection) -> list[NotificationPolicy]:
    """Every enabled policy, oldest first."""
    rows = conn.execute(
        "SELECT spec FROM notification_policies WHERE enabled = 1 ORDER BY created_at, id"
    )
    return [NotificationPolicy.model_validate_json(row[0]) for row in rows.fetchall()]


def update(conn: sqlite3.Connection, policy_id: str, change: PolicyChange) -> NotificationPolicy:
    """Apply ``change`` to a stored policy; a disabled policy forgets its alert groups."""
    new = change(get(conn, policy_id))
    _require_channel(conn, new.channel_id)
    with taken(f"a notification policy named {new.name!r} exists already"):
        conn.execute(
            "UPDATE notification_policies SET name = ?, channel_id = ?, enabled = ?, spec = ? "
            "WHERE id = ?",
            (new.name, new.channel_id, int(new.enabled), new.model_dump_json(), policy_id),
        )
    if not new.enabled:
        conn.execute("DELETE FROM notification_groups WHERE policy_id = ?", (policy_id,))
    return new


def delete(conn: sqlite3.Connection, policy_id: str) -> None:
    """Delete a policy and its alert groups."""
    get(conn, policy_id)
    conn.execute("DELETE FROM notification_policies WHERE id = ?", (policy_id,))


def _require_channel(conn: sqlite3.Connection, channel_id: str) -> None:
    if channels.find(conn, channel_id) is None:
        raise NotFound.of("notification channel", channel_id, "channel_id")
