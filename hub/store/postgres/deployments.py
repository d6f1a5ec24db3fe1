"""SQL of deployments and each PE's change log on PostgreSQL (the watch streams' source).

As on SQLite, every write of a deployment appends ``(seq, pe, deployment,
generation, removed)`` to ``changes`` in the same transaction, and a stream
resumed after revision *r* needs each deployment's latest change after *r*.

Every change of a PE first locks the PE's row. That serializes the PE's
changes across replicas, which keeps two promises: a change's ``seq`` is taken
only after the previous change of the PE committed, so a PE's revisions become
visible in increasing order (a watch stream that has seen revision 12 never
later finds an 11 it missed); and a read-modify-write of a deployment
(:func:`update`) never loses a concurrent change.

While a PE's *Use Management Agent* switch is off (a row of
``management_paused``, written by :mod:`.management`), what its agent reads
stops at the frozen revision, exactly as on SQLite.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import asyncpg

from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.hub import clock
from pilothouse.hub.api.schemas import EventIn, Observed
from pilothouse.hub.errors import NotFound
from pilothouse.hub.store import mapping
from pilothouse.hub.store.interface import DeploymentChange
from pilothouse.hub.store.postgres import environments, events
from pilothouse.hub.store.postgres.db import Connection, page_clause, taken
from pilothouse.hub.store.records import (
    DeploymentRecord,
    PageQuery,
    Replay,
)


async def add(conn: Connection, record: DeploymentRecord, event: EventIn) -> None:
    """Insert a deployment, its first change and its event."""
    desired = record.desired
    await environments.get(conn, record.prediction_environment_id, lock=True)
    with taken(f"a deployment named {desired.name!r} exists already in this environment"):
        await conn.execute(
            f"INSERT INTO deployments ({mapping.NEW_DEPLOYMENT_COLUMNS}) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            *mapping.deployment_row(record),
        )
    await _log_change(conn, record)
    await events.insert(conn, [event])


async def update(
    conn: Connection, deployment_id: str, change: DeploymentChange
) -> DeploymentRecord:
    """Apply ``change`` to a live deployment; log the change and store its event."""
    pe_id = await conn.fetchval(
        "SELECT prediction_environment_id FROM deployments WHERE id = $1 AND NOT deleted",
        deployment_id,
    )
    if pe_id is None:
        raise NotFound.of("deployment", deployment_id)
    await environments.get(conn, pe_id, lock=True)
    new, event = change(await get(conn, deployment_id))
    with taken(f"a deployment named {new.desired.name!r} exists already in this environment"):
        await conn.execute(
            "UPDATE deployments SET name = $1, desired = $2, generation = $3, deleted = $4, "
            "updated_at = $5 WHERE id = $6",
            new.desired.name,
            new.desired.model_dump_json(),
            new.desired.generation,
            new.deleted,
            clock.to_us(new.updated_at),
            deployment_id,
        )
    await _log_change(conn, new)
    await events.insert(conn, [event])
    return new


async def get(conn: Connection, deployment_id: str) -> DeploymentRecord:
    """A live deployment with its health sources, or ``NotFound``."""
    row = await conn.fetchrow(
        f"SELECT {mapping.DEPLOYMENT_COLUMNS} FROM deployments WHERE id = $1 AND NOT deleted",
        deployment_id,
    )
    if row is None:
        raise NotFound.of("deployment", deployment_id)
    return (await _with_health(conn, [row]))[0]


async def page(conn: Connection, pe_id: str | None, query: PageQuery) -> list[DeploymentRecord]:
    """Live deployments, newest first, optionally of one PE."""
    if pe_id:
        tail, params = page_clause(query, "created_at", 2)
        rows = await conn.fetch(
            f"SELECT {mapping.DEPLOYMENT_COLUMNS} FROM deployments WHERE NOT deleted "
            f"AND prediction_environment_id = $1{tail}",
            pe_id,
            *params,
        )
    else:
        tail, params = page_clause(query, "created_at", 1)
        rows = await conn.fetch(
            f"SELECT {mapping.DEPLOYMENT_COLUMNS} FROM deployments WHERE NOT deleted{tail}", *params
        )
    return await _with_health(conn, rows)


async def set_observed(conn: Connection, deployment_id: str, observed: Observed) -> None:
    """Store an observation unless a newer generation was observed already."""
    updated_us = clock.to_us(observed.updated_at or clock.now())
    found = await conn.fetchval(
        "UPDATE deployments SET observed_state = $1, observed_model_package_id = $2, "
        "observed_prediction_url = $3, observed_generation = $4, observed_updated_at = $5, "
        "observed_grpc_target = $7 "
        "WHERE id = $6 AND NOT deleted AND observed_generation <= $4 RETURNING true",
        observed.state.value,
        observed.model_package_id,
        observed.prediction_url,
        observed.generation,
        updated_us,
        deployment_id,
        observed.grpc_target,
    )
    if found is None:
        await get(conn, deployment_id)  # NotFound if gone; otherwise the report was stale


async def environments_of(conn: Connection, ids: Collection[str]) -> dict[str, str]:
    """The PE of each of ``ids`` that is a deployment (tombstones too: they were its PE's)."""
    rows = await conn.fetch(
        "SELECT id, prediction_environment_id FROM deployments WHERE id = any($1::text[])",
        list(ids),
    )
    return {row[0]: row[1] for row in rows}


async def desired_state(conn: Connection, pe_id: str) -> tuple[int, list[DesiredDeployment]]:
    """What the PE's agent must run and its revision (frozen while paused; one snapshot)."""
    await environments.get(conn, pe_id)
    frozen = await _frozen(conn, pe_id)
    if frozen is not None:
        return frozen[0], list(frozen[1].values())
    return await live_state(conn, pe_id)


async def live_state(conn: Connection, pe_id: str) -> tuple[int, list[DesiredDeployment]]:
    """The PE's latest revision and live deployments, paused or not."""
    rows = await conn.fetch(
        "SELECT desired FROM deployments WHERE prediction_environment_id = $1 AND NOT deleted "
        "ORDER BY created_at, id",
        pe_id,
    )
    return await _latest(conn, pe_id), [DesiredDeployment.model_validate_json(r[0]) for r in rows]


async def revision(conn: Connection, pe_id: str) -> int:
    """The PE's latest change number as its agent sees it (0 before its first change)."""
    frozen = await _frozen(conn, pe_id)
    return frozen[0] if frozen is not None else await _latest(conn, pe_id)


async def replay(conn: Connection, pe_id: str, after: int) -> Replay | None:
    """Each deployment's latest change after ``after``; None if ``after`` is not the PE's.

    Two statements, no snapshot needed: the first fixes the revision to replay up to
    (``upto``), and the second reads only changes at or below it, so a change
    committed in between is left for the next wake-up, never half-seen.
    """
    head = await conn.fetchrow(_REPLAY_HEAD, pe_id, after)
    if head is None:
        raise NotFound.of("prediction environment", pe_id)
    of_pe, frozen_revision, frozen_snapshot, latest = head
    if after < 0 or (after > 0 and not of_pe):
        return None
    frozen = None if frozen_snapshot is None else mapping.thawed(frozen_snapshot)
    upto = int(frozen_revision) if frozen_revision is not None else int(latest)
    if after > upto:
        return None
    rows = await conn.fetch(
        "SELECT c.seq, c.deployment_id, c.generation, c.removed, d.desired "
        "FROM changes c JOIN deployments d ON d.id = c.deployment_id WHERE c.seq IN "
        "(SELECT max(seq) FROM changes WHERE prediction_environment_id = $1 AND seq > $2 "
        "AND seq <= $3 GROUP BY deployment_id) ORDER BY c.seq",
        pe_id,
        after,
        upto,
    )
    changes = tuple(mapping.change(row, frozen) for row in rows)
    return Replay(changes[-1].seq if changes else after, changes)


_REPLAY_HEAD = (
    "SELECT EXISTS (SELECT 1 FROM changes WHERE seq = $2 AND prediction_environment_id = $1), "
    "m.revision, m.snapshot, "
    "(SELECT coalesce(max(seq), 0) FROM changes WHERE prediction_environment_id = $1) "
    "FROM prediction_environments p "
    "LEFT JOIN management_paused m ON m.prediction_environment_id = p.id WHERE p.id = $1"
)
"""In one round trip: whether ``after`` is a change of the PE, its frozen state, its latest."""


async def _latest(conn: Connection, pe_id: str) -> int:
    found = await conn.fetchval(
        "SELECT coalesce(max(seq), 0) FROM changes WHERE prediction_environment_id = $1", pe_id
    )
    return int(found)


async def _frozen(conn: Connection, pe_id: str) -> tuple[int, dict[str, DesiredDeployment]] | None:
    """The revision and deployments the PE's agent sees while its management agent is off."""
    row = await conn.fetchrow(
        "SELECT revision, snapshot FROM management_paused WHERE prediction_environment_id = $1",
        pe_id,
    )
    if row is None:
        return None
    return int(row[0]), mapping.thawed(row[1])


async def _log_change(conn: Connection, record: DeploymentRecord) -> None:
    await conn.execute(
        "INSERT INTO changes (prediction_environment_id, deployment_id, generation, removed) "
        "VALUES ($1, $2, $3, $4)",
        record.prediction_environment_id,
        record.desired.id,
        record.desired.generation,
        record.deleted,
    )


async def _with_health(conn: Connection, rows: Sequence[asyncpg.Record]) -> list[DeploymentRecord]:
    ids = [row[0] for row in rows]
    health = await events.health_sources(conn, ids)
    last = await _last_event_times(conn, ids)
    return [mapping.deployment(row, tuple(health[row[0]]), last.get(row[0])) for row in rows]


async def _last_event_times(conn: Connection, ids: Sequence[str]) -> dict[str, int]:
    """The time of each deployment's latest event: one index lookup each (events_by_deployment)."""
    found = await conn.fetch(
        "SELECT d, (SELECT max(e.time) FROM events e WHERE e.deployment_id = d) "
        "FROM unnest($1::text[]) AS d",
        list(ids),
    )
    return {dep: int(at) for dep, at in found if at is not None}
