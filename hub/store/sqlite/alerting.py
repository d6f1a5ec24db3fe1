"""SQL of alert groups: routing new events into them, and flushing the due ones into messages.

*Routing* reads the events stored after the routing cursor (``hub_state``), in
``seq`` order, with the enabled policies, the groups those events fall into
and their deployments' health sources, hands them to the router (pure, given
by the service layer), and writes back the changed groups, the events they
now hold for their next message, and the new cursor — in one transaction, so
an event is routed exactly once even across a crash. With no enabled policy
the cursor just moves to the newest event.

*Flushing* takes each group whose ``flush_at`` has come, with its policy,
channel, waiting events, the deployment's health, name and whether it was
deleted, hands it to the composer (pure, from the service layer) and stores
what comes back: the group's next state (or its removal) and the message to
deliver, again in one transaction.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from pilothouse.hub.api.schemas import EventOut
from pilothouse.hub.store import mapping, notification_mapping
from pilothouse.hub.store.records import (
    AlertGroup,
    Composer,
    DueGroup,
    RoutedEvent,
    Router,
    RoutingBatch,
    group_key,
)
from pilothouse.hub.store.sqlite import channels, deliveries, events, policies, state
from pilothouse.hub.store.sqlite.rows import placeholders

_UPSERT = (
    f"INSERT INTO notification_groups ({notification_mapping.GROUP_COLUMNS}) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (policy_id, group_key) DO UPDATE SET "
    "flush_at = excluded.flush_at, state = excluded.state"
)
_PENDING = (
    "INSERT OR IGNORE INTO notification_pending (policy_id, group_key, seq, event) "
    "VALUES (?, ?, ?, ?)"
)
_NEXT_DUE = (
    "SELECT min(t) FROM (SELECT min(flush_at) AS t FROM notification_groups "
    "WHERE flush_at IS NOT NULL UNION ALL SELECT min(next_attempt_at) "
    "FROM notification_deliveries WHERE state = 'pending')"
)


def skip_unwatched(conn: sqlite3.Connection) -> bool:
    """With no enabled policy, move the routing cursor past every stored event; True if so.

    Routing would do nothing else with them, and the purge removes only routed events.
    """
    if policies.enabled(conn):
        return False
    cursor = int(state.get(conn, state.ROUTED_SEQ) or 0)
    newest = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
    if newest > cursor:
        state.put(conn, state.ROUTED_SEQ, newest)
    return True


def route(conn: sqlite3.Connection, now_us: int, limit: int, router: Router) -> int:
    """Route up to ``limit`` events after the cursor; return how many were looked at."""
    if skip_unwatched(conn):
        return 0
    cursor = int(state.get(conn, state.ROUTED_SEQ) or 0)
    active = policies.enabled(conn)
    rows = conn.execute(
        f"SELECT seq, {mapping.EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
        (cursor, limit),
    ).fetchall()
    if not rows:
        return 0
    batch = [RoutedEvent(row[0], mapping.event(row[1:])) for row in rows]
    keys = {group_key(r.event.prediction_environment_id, r.event.deployment_id) for r in batch}
    deployments = sorted({r.event.deployment_id for r in batch if r.event.deployment_id})
    routed = router(
        RoutingBatch(
            events=batch,
            policies=active,
            groups={(g.policy_id, g.key): g for g in _groups_with_keys(conn, keys)},
            health={d: tuple(s) for d, s in events.health_sources(conn, deployments).items()},
            now_us=now_us,
        )
    )
    conn.executemany(_UPSERT, [notification_mapping.group_row(g) for g in routed.groups])
    conn.executemany(
        _PENDING,
        [(p, k, r.seq, r.event.model_dump_json()) for p, k, r in routed.pending],
    )
    state.put(conn, state.ROUTED_SEQ, rows[-1][0])
    return len(rows)


def flush(conn: sqlite3.Connection, now_us: int, limit: int, composer: Composer) -> int:
    """Compose the messages of up to ``limit`` due groups; return how many groups were due."""
    rows = conn.execute(
        f"SELECT {notification_mapping.GROUP_COLUMNS} FROM notification_groups "
        "WHERE flush_at <= ? ORDER BY flush_at LIMIT ?",
        (now_us, limit),
    ).fetchall()
    for row in rows:
        group = notification_mapping.group(row)
        out = composer(_due(conn, group, now_us))
        conn.execute(
            "DELETE FROM notification_pending WHERE policy_id = ? AND group_key = ?",
            (group.policy_id, group.key),
        )
        if out.group is None:
            conn.execute(
                "DELETE FROM notification_groups WHERE policy_id = ? AND group_key = ?",
                (group.policy_id, group.key),
            )
        else:
            conn.execute(_UPSERT, notification_mapping.group_row(out.group))
        if out.delivery is not None:
            deliveries.add(conn, out.delivery)
    return len(rows)


def next_due(conn: sqlite3.Connection) -> int | None:
    """When a group next has something to send or a delivery is next due (µs), if ever."""
    found = conn.execute(_NEXT_DUE).fetchone()[0]
    return None if found is None else int(found)


def _due(conn: sqlite3.Connection, group: AlertGroup, now_us: int) -> DueGroup:
    policy = policies.get(conn, group.policy_id)
    channel = channels.find(conn, policy.channel_id)
    pending = conn.execute(
        "SELECT event FROM notification_pending WHERE policy_id = ? AND group_key = ? ORDER BY seq",
        (group.policy_id, group.key),
    ).fetchall()
    health: tuple[Any, ...] = ()
    name, deleted = None, False
    if group.deployment_id is not None:
        health = tuple(events.health_sources(conn, [group.deployment_id])[group.deployment_id])
        found = conn.execute(
            "SELECT name, deleted FROM deployments WHERE id = ?", (group.deployment_id,)
        ).fetchone()
        if found is not None:
            name, deleted = found[0], bool(found[1])
    env = conn.execute(
        "SELECT name FROM prediction_environments WHERE id = ?", (group.prediction_environment_id,)
    ).fetchone()
    return DueGroup(
        group=group,
        policy=policy,
        channel=None if channel is None else channel.channel,
        pending=[EventOut.model_validate_json(row[0]) for row in pending],
        health=health,
        deployment_name=name,
        deployment_deleted=deleted,
        environment_name=None if env is None else env[0],
        now_us=now_us,
    )


def _groups_with_keys(conn: sqlite3.Connection, keys: set[str]) -> list[AlertGroup]:
    wanted = sorted(keys)
    rows = conn.execute(
        f"SELECT {notification_mapping.GROUP_COLUMNS} FROM notification_groups "
        f"WHERE group_key IN ({placeholders(len(wanted))})",
        wanted,
    ).fetchall()
    return [notification_mapping.group(row) for row in rows]
