"""SQL of deployments and of each PE's change log (the watch streams' source).

Every write of a deployment appends ``(seq, pe, deployment, generation,
removed)`` to ``changes`` in the same transaction, so a PE's revision — its
latest ``seq`` — names exactly one desired state, and a stream resumed after
revision *r* needs only each deployment's latest change after *r*: a newer
generation supersedes everything before it. Deleted deployments stay as
tombstones, so their generation never goes back and their removal replays.

While a PE's *Use Management Agent* switch is off (a row of
``management_paused``, written by :mod:`.management`), what its agent reads —
:func:`desired_state`, :func:`revision`, :func:`replay` — stops at the frozen
revision and shows the deployments as they were then; changes made meanwhile
are logged as usual and replay once the switch is on again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from typing import Any

from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.hub import clock
from pilothouse.hub.api.schemas import EventIn, Observed
from pilothouse.hub.errors import NotFound
from pilothouse.hub.store import mapping
from pilothouse.hub.store.interface import DeploymentChange
from pilothouse.hub.store.records import DeploymentRecord, PageQuery, Replay
from pilothouse.hub.store.sqlite import environments, events
from pilothouse.hub.store.sqlite.rows import page_clause, placeholders, taken


def add(conn: sqlite3.Connection, record: DeploymentRecord, event: EventIn) -> None:
    """Insert a deployment, its first change and its event."""
    desired = record.desired
    environments.get(conn, record.prediction_environment_id)
    with taken(f"a deployment named {desired.name!r} exists already in this environment"):
        conn.execute(
            f"INSERT INTO deployments ({mapping.NEW_DEPLOYMENT_COLUMNS}) "
            f"VALUES ({placeholders(7)})",
            mapping.deployment_row(record),
        )
    _log_change(conn, record)
    events.insert(conn, [event])


def update(
    conn: sqlite3.Connection, deployment_id: str, change: DeploymentChange
) -> DeploymentRecord:
    """Apply ``change`` to a live deployment; log the change and store its event."""
    new, event = change(get(conn, deployment_id))
    with taken(f"a deployment named {new.desired.name!r} exists already in this environment"):
        conn.execute(
            "UPDATE deployments SET name = ?, desired = ?, generation = ?, deleted = ?, "
            "updated_at = ? WHERE id = ?",
            (
                new.desired.name,
                new.desired.model_dump_json(),
                new.desired.generation,
                int(new.deleted),
                clock.to_us(new.updated_at),
                deployment_id,
            ),
        )
    _log_change(conn, new)
    events.insert(conn, [event])
    return new


def get(conn: sqlite3.Connection, deployment_id: str) -> DeploymentRecord:
    """A live deployment with its health sources, or ``NotFound``."""
    row = conn.execute(
        f"SELECT {mapping.DEPLOYMENT_COLUMNS} FROM deployments WHERE id = ? AND deleted = 0",
        (deployment_id,),
    ).fetchone()
    if row is None:
        raise NotFound.of("deployment", deployment_id)
    return _with_health(conn, [row])[0]


def page(conn: sqlite3.Connection, pe_id: str | None, query: PageQuery) -> list[DeploymentRecord]:
    """Live deployments, newest first, optionally of one PE."""
    tail, params = page_clause(query, "created_at")
    where = "deleted = 0" + (" AND prediction_environment_id = ?" if pe_id else "")
    rows = conn.execute(
        f"SELECT {mapping.DEPLOYMENT_COLUMNS} FROM deployments WHERE {where}{tail}",
        [pe_id, *params] if pe_id else params,
    ).fetchall()
    return _with_health(conn, rows)


def set_observed(conn: sqlite3.Connection, deployment_id: str, observed: Observed) -> None:
    """Store an observation unless a newer generation was observed already."""
    updated_us = clock.to_us(observed.updated_at or clock.now())
    cursor = conn.execute(
        "UPDATE deployments SET observed_state = ?, observed_model_package_id = ?, "
        "observed_prediction_url = ?, observed_generation = ?, observed_updated_at = ?, "
        "observed_grpc_target = ? WHERE id = ? AND deleted = 0 AND observed_generation <= ?",
        (
            observed.state.value,
            observed.model_package_id,
            observed.prediction_url,
            observed.generation,
            updated_us,
            observed.grpc_target,
            deployment_id,
            observed.generation,
        ),
    )
    if cursor.rowcount == 0:
        get(conn, deployment_id)  # NotFound if gone; otherwise the report was stale


def environments_of(conn: sqlite3.Connection, ids: Collection[str]) -> dict[str, str]:
    """The PE of each of ``ids`` that is a deployment (tombstones too: they were its PE's)."""
    wanted = list(ids)
    rows = conn.execute(
        "SELECT id, prediction_environment_id FROM deployments "
        f"WHERE id IN ({placeholders(len(wanted))})",
        wanted,
    ).fetchall()
    return {row[0]: row[1] for row in rows}


def desired_state(conn: sqlite3.Connection, pe_id: str) -> tuple[int, list[DesiredDeployment]]:
    """What the PE's agent must run and its revision, from one snapshot (frozen while paused)."""
    environments.get(conn, pe_id)
    frozen = _frozen(conn, pe_id)
    if frozen is not None:
        return frozen[0], list(frozen[1].values())
    return live_state(conn, pe_id)


def live_state(conn: sqlite3.Connection, pe_id: str) -> tuple[int, list[DesiredDeployment]]:
    """The PE's latest revision and live deployments, paused or not."""
    rows = conn.execute(
        "SELECT desired FROM deployments WHERE prediction_environment_id = ? AND deleted = 0 "
        "ORDER BY created_at, id",
        (pe_id,),
    ).fetchall()
    return _latest(conn, pe_id), [DesiredDeployment.model_validate_json(r[0]) for r in rows]


def revision(conn: sqlite3.Connection, pe_id: str) -> int:
    """The PE's latest change number as its agent sees it (0 before its first change)."""
    frozen = _frozen(conn, pe_id)
    return frozen[0] if frozen is not None else _latest(conn, pe_id)


def replay(conn: sqlite3.Connection, pe_id: str, after: int) -> Replay | None:
    """Each deployment's latest change after ``after``; None if ``after`` is not the PE's."""
    environments.get(conn, pe_id)
    if after < 0 or (after > 0 and not _is_change_of(conn, pe_id, after)):
        return None
    frozen = _frozen(conn, pe_id)
    upto = frozen[0] if frozen is not None else _latest(conn, pe_id)
    if after > upto:
        return None
    rows = conn.execute(
        "SELECT c.seq, c.deployment_id, c.generation, c.removed, d.desired "
        "FROM changes c JOIN deployments d ON d.id = c.deployment_id WHERE c.seq IN "
        "(SELECT max(seq) FROM changes WHERE prediction_environment_id = ? AND seq > ? "
        "AND seq <= ? GROUP BY deployment_id) ORDER BY c.seq",
        (pe_id, after, upto),
    ).fetchall()
    changes = tuple(mapping.change(row, None if frozen is None else frozen[1]) for row in rows)
    return Replay(changes[-1].seq if changes else after, changes)


def _latest(conn: sqlite3.Connection, pe_id: str) -> int:
    row = conn.execute(
        "SELECT coalesce(max(seq), 0) FROM changes WHERE prediction_environment_id = ?", (pe_id,)
    ).fetchone()
    return int(row[0])


def _frozen(
    conn: sqlite3.Connection, pe_id: str
) -> tuple[int, dict[str, DesiredDeployment]] | None:
    """The revision and deployments the PE's agent sees while its management agent is off."""
    row = conn.execute(
        "SELECT revision, snapshot FROM management_paused WHERE prediction_environment_id = ?",
        (pe_id,),
    ).fetchone()
    if row is None:
        return None
    return int(row[0]), mapping.thawed(row[1])


def _is_change_of(conn: sqlite3.Connection, pe_id: str, seq: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM changes WHERE seq = ? AND prediction_environment_id = ?", (seq, pe_id)
    ).fetchone()
    return row is not None


def _log_change(conn: sqlite3.Connection, record: DeploymentRecord) -> None:
    conn.execute(
        "INSERT INTO changes (prediction_environment_id, deployment_id, generation, removed) "
        "VALUES (?, ?, ?, ?)",
        (
            record.prediction_environment_id,
            record.desired.id,
            record.desired.generation,
            int(record.deleted),
        ),
    )


def _with_health(
    conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]
) -> list[DeploymentRecord]:
    ids = [row[0] for row in rows]
    health = events.health_sources(conn, ids)
    last = _last_event_times(conn, ids)
    return [mapping.deployment(row, tuple(health[row[0]]), last.get(row[0])) for row in rows]


def _last_event_times(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, int]:
    """The time of each deployment's latest event: one index lookup each (events_by_deployment)."""
    found = conn.execute(
        "SELECT d.id, (SELECT max(e.time) FROM events e WHERE e.deployment_id = d.id) "
        f"FROM deployments d WHERE d.id IN ({placeholders(len(ids))})",
        list(ids),
    ).fetchall()
    return {dep: int(at) for dep, at in found if at is not None}
