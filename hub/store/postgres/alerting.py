"""SQL of alert groups on PostgreSQL: routing new events into them, flushing the due ones.

The same two steps as on SQLite (:mod:`pilothouse.hub.store.sqlite.alerting`),
each one transaction. What replicas change:

* *Routing* locks the routing cursor's row first, so two routers (a dispatcher
  that lost its lease but has not noticed yet, and its successor) take turns
  and each event is routed once. It reads events in ``(tx, seq)`` order, only
  those of transactions older than every transaction still running
  (``pg_snapshot_xmin``): an event committed later always sorts after the
  cursor, so none is ever skipped (see :mod:`.migrations`). Transactions of
  other databases on the same server do not hold routing back (:data:`SETTLED`).
* *Flushing* claims due groups with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

from typing import Any

from pilothouse.hub.api.schemas import EventOut
from pilothouse.hub.store import mapping, notification_mapping
from pilothouse.hub.store.postgres import channels, deliveries, events, policies, state
from pilothouse.hub.store.postgres.db import Connection
from pilothouse.hub.store.records import (
    AlertGroup,
    Composer,
    DueGroup,
    RoutedEvent,
    Router,
    RoutingBatch,
    group_key,
)

_UPSERT = (
    f"INSERT INTO notification_groups ({notification_mapping.GROUP_COLUMNS}) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) "
    "ON CONFLICT (policy_id, group_key) DO UPDATE SET "
    "flush_at = excluded.flush_at, state = excluded.state"
)
_PENDING = (
    "INSERT INTO notification_pending (policy_id, group_key, seq, event) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) "
    "ON CONFLICT DO NOTHING"
)
_NEXT_DUE = (
    "SELECT least((SELECT min(flush_at) FROM notification_groups WHERE flush_at IS NOT NULL), "
    "(SELECT min(next_attempt_at) FROM notification_deliveries WHERE state = 'pending'))"
)
SETTLED = """(
    WITH snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s)
    SELECT coalesce(
        (SELECT min(x) FROM snap, pg_snapshot_xip(snap.s) AS x WHERE NOT EXISTS (
            SELECT 1 FROM pg_stat_activity a
            WHERE a.backend_xid IS NOT NULL AND a.datname <> current_database()
            AND a.backend_xid::text::bigint = x::text::bigint % 4294967296)),
        (SELECT pg_snapshot_xmax(s) FROM snap))
)"""
"""The transaction id below which every transaction that may have stored events has ended.

``pg_snapshot_xmin`` of the statement's snapshot, except that transactions
known to run in another database of the cluster (they cannot store our events)
do not hold it back: a long transaction of another application on a shared
server must not stall notifications. A transaction that ended after the
snapshot cannot be placed and still counts, which errs on the safe side (its
events are routed a moment later)."""


async def route(conn: Connection, now_us: int, limit: int, router: Router) -> tuple[int, bool]:
    """Route up to ``limit`` events after the cursor.

    Return how many were looked at, and whether events of transactions still
    running at the time were left for later (the caller looks again shortly: the
    commit that wakes the router may come before the older transaction's).
    """
    routed_count = await _route(conn, now_us, limit, router)
    if routed_count == limit:
        return routed_count, False
    tx, seq = await state.routed(conn)
    later = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM events WHERE (tx, seq) > ($1::xid8, $2))", tx, seq
    )
    return routed_count, bool(later)


async def skip_unwatched(conn: Connection) -> bool:
    """With no enabled policy, move the routing cursor past every settled event; True if so.

    Routing would do nothing else with them. Locks the cursor's row.
    """
    tx, seq = await state.routed(conn, lock=True)
    if await policies.enabled(conn):
        return False
    newest = await conn.fetchrow(
        f"SELECT tx, seq FROM events WHERE tx < {SETTLED} ORDER BY tx DESC, seq DESC LIMIT 1"
    )
    if newest is not None and (newest[0], newest[1]) > (tx, seq):
        await state.set_routed(conn, newest[0], newest[1])
    return True


async def _route(conn: Connection, now_us: int, limit: int, router: Router) -> int:
    if await skip_unwatched(conn):
        return 0
    tx, seq = await state.routed(conn)
    active = await policies.enabled(conn)
    rows = await conn.fetch(
        f"SELECT tx, seq, {mapping.EVENT_COLUMNS} FROM events "
        f"WHERE (tx, seq) > ($1::xid8, $2) AND tx < {SETTLED} ORDER BY tx, seq LIMIT $3",
        tx,
        seq,
        limit,
    )
    if not rows:
        return 0
    batch = [RoutedEvent(row[1], mapping.event(row[2:])) for row in rows]
    keys = {group_key(r.event.prediction_environment_id, r.event.deployment_id) for r in batch}
    deployments = sorted({r.event.deployment_id for r in batch if r.event.deployment_id})
    health = await events.health_sources(conn, deployments)
    routed = router(
        RoutingBatch(
            events=batch,
            policies=active,
            groups={(g.policy_id, g.key): g for g in await _groups_with_keys(conn, keys)},
            health={d: tuple(s) for d, s in health.items()},
            now_us=now_us,
        )
    )
    await _upsert(conn, routed.groups)
    if routed.pending:
        pending = [(p, k, r.seq, r.event.model_dump_json()) for p, k, r in routed.pending]
        await conn.execute(_PENDING, *[list(c) for c in zip(*pending, strict=True)])
    await state.set_routed(conn, rows[-1][0], rows[-1][1])
    return len(rows)


async def flush(conn: Connection, now_us: int, limit: int, composer: Composer) -> int:
    """Compose the messages of up to ``limit`` due groups; return how many groups were due."""
    rows = await conn.fetch(
        f"SELECT {notification_mapping.GROUP_COLUMNS} FROM notification_groups "
        "WHERE flush_at <= $1 ORDER BY flush_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now_us,
        limit,
    )
    for row in rows:
        group = notification_mapping.group(row)
        out = composer(await _due(conn, group, now_us))
        await conn.execute(
            "DELETE FROM notification_pending WHERE policy_id = $1 AND group_key = $2",
            group.policy_id,
            group.key,
        )
        if out.group is None:
            await conn.execute(
                "DELETE FROM notification_groups WHERE policy_id = $1 AND group_key = $2",
                group.policy_id,
                group.key,
            )
        else:
            await _upsert(conn, [out.group])
        if out.delivery is not None:
            await deliveries.add(conn, out.delivery)
    return len(rows)


async def next_due(conn: Connection) -> int | None:
    """When a group next has something to send or a delivery is next due (µs), if ever."""
    found = await conn.fetchval(_NEXT_DUE)
    return None if found is None else int(found)


async def _due(conn: Connection, group: AlertGroup, now_us: int) -> DueGroup:
    policy = await policies.get(conn, group.policy_id)
    channel = await channels.find(conn, policy.channel_id)
    pending = await conn.fetch(
        "SELECT event FROM notification_pending WHERE policy_id = $1 AND group_key = $2 "
        "ORDER BY seq",
        group.policy_id,
        group.key,
    )
    health: tuple[Any, ...] = ()
    name, deleted = None, False
    if group.deployment_id is not None:
        found_health = await events.health_sources(conn, [group.deployment_id])
        health = tuple(found_health[group.deployment_id])
        found = await conn.fetchrow(
            "SELECT name, deleted FROM deployments WHERE id = $1", group.deployment_id
        )
        if found is not None:
            name, deleted = found[0], bool(found[1])
    env = await conn.fetchval(
        "SELECT name FROM prediction_environments WHERE id = $1", group.prediction_environment_id
    )
    return DueGroup(
        group=group,
        policy=policy,
        channel=None if channel is None else channel.channel,
        pending=[EventOut.model_validate_json(row[0]) for row in pending],
        health=health,
        deployment_name=name,
        deployment_deleted=deleted,
        environment_name=env,
        now_us=now_us,
    )


async def _groups_with_keys(conn: Connection, keys: set[str]) -> list[AlertGroup]:
    rows = await conn.fetch(
        f"SELECT {notification_mapping.GROUP_COLUMNS} FROM notification_groups "
        "WHERE group_key = any($1::text[])",
        sorted(keys),
    )
    return [notification_mapping.group(row) for row in rows]


async def _upsert(conn: Connection, groups: list[AlertGroup]) -> None:
    if groups:
        last = {(g.policy_id, g.key): g for g in groups}  # a group changed twice: its last state
        rows = sorted(notification_mapping.group_row(g) for g in last.values())
        await conn.execute(_UPSERT, *[list(c) for c in zip(*rows, strict=True)])
