"""SQL of prediction environments, agent tokens and agent presence."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection
from typing import Any

from pilothouse.hub.api.schemas import AgentTokenInfo, EventIn, PredictionEnvironment
from pilothouse.hub.errors import NotFound
from pilothouse.hub.store import mapping
from pilothouse.hub.store.records import PageQuery, TokenKind
from pilothouse.hub.store.sqlite import events
from pilothouse.hub.store.sqlite.rows import page_clause, placeholders, taken

_SELECT = f"SELECT {mapping.ENVIRONMENT_COLUMNS}{mapping.MANAGED} FROM prediction_environments"


def add(conn: sqlite3.Connection, env: PredictionEnvironment) -> None:
    """Insert a PE; ``Conflict`` if the name is taken."""
    with taken(f"a prediction environment named {env.name!r} exists already"):
        conn.execute(
            "INSERT INTO prediction_environments (id, name, platform, description, "
            "plugin_settings, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            mapping.environment_row(env),
        )


def get(conn: sqlite3.Connection, pe_id: str) -> PredictionEnvironment:
    """One PE, or ``NotFound``."""
    row = conn.execute(
        f"{_SELECT} WHERE id = ?",
        (pe_id,),
    ).fetchone()
    if row is None:
        raise NotFound.of("prediction environment", pe_id)
    return mapping.environment(row)


def page(conn: sqlite3.Connection, query: PageQuery) -> list[PredictionEnvironment]:
    """PEs, newest first."""
    tail, params = page_clause(query, "created_at")
    rows = conn.execute(
        f"{_SELECT} WHERE 1{tail}",
        params,
    ).fetchall()
    return [mapping.environment(row) for row in rows]


def known(conn: sqlite3.Connection, ids: Collection[str]) -> set[str]:
    """Which of ``ids`` exist."""
    wanted = list(ids)
    rows = conn.execute(
        f"SELECT id FROM prediction_environments WHERE id IN ({placeholders(len(wanted))})",
        wanted,
    ).fetchall()
    return {row[0] for row in rows}


def add_token(
    conn: sqlite3.Connection,
    token_id: str,
    pe_id: str,
    token_sha256: str,
    created_us: int,
    kind: TokenKind = "agent",
) -> None:
    """Store a token's hash (the PE must exist)."""
    get(conn, pe_id)
    conn.execute(
        "INSERT INTO agent_tokens (id, prediction_environment_id, token_sha256, created_at, kind) "
        "VALUES (?, ?, ?, ?, ?)",
        (token_id, pe_id, token_sha256, created_us, kind),
    )


def for_token(conn: sqlite3.Connection, token_sha256: str) -> tuple[str, str, TokenKind] | None:
    """The id, PE and kind of the live (not revoked) token with this hash."""
    row = conn.execute(
        "SELECT id, prediction_environment_id, kind FROM agent_tokens "
        "WHERE token_sha256 = ? AND revoked_at IS NULL",
        (token_sha256,),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]), row[2])


def token_live(conn: sqlite3.Connection, token_id: str) -> bool:
    """Whether the token exists and is not revoked."""
    row = conn.execute(
        "SELECT 1 FROM agent_tokens WHERE id = ? AND revoked_at IS NULL", (token_id,)
    ).fetchone()
    return row is not None


def tokens(
    conn: sqlite3.Connection, pe_id: str, query: PageQuery, kind: TokenKind = "agent"
) -> list[AgentTokenInfo]:
    """The PE's tokens of ``kind`` (revoked ones too), newest first."""
    get(conn, pe_id)
    tail, params = page_clause(query, "created_at")
    rows = conn.execute(
        f"SELECT {mapping.TOKEN_COLUMNS} FROM agent_tokens "
        f"WHERE prediction_environment_id = ? AND kind = ?{tail}",
        [pe_id, kind, *params],
    ).fetchall()
    return [mapping.token(row) for row in rows]


def revoke_token(
    conn: sqlite3.Connection, pe_id: str, token_id: str, at_us: int, kind: TokenKind = "agent"
) -> AgentTokenInfo:
    """Revoke one of the PE's tokens of ``kind`` (again: keeps the first revocation time)."""
    conn.execute(
        "UPDATE agent_tokens SET revoked_at = ? WHERE id = ? AND prediction_environment_id = ? "
        "AND kind = ? AND revoked_at IS NULL",
        (at_us, token_id, pe_id, kind),
    )
    row = conn.execute(
        f"SELECT {mapping.TOKEN_COLUMNS} FROM agent_tokens "
        "WHERE id = ? AND prediction_environment_id = ? AND kind = ?",
        (token_id, pe_id, kind),
    ).fetchone()
    if row is None:
        raise NotFound.of(f"{kind} token", token_id)
    return mapping.token(row)


def uses_package(conn: sqlite3.Connection, pe_id: str, package_id: str) -> bool:
    """Whether a live deployment of the PE wants or runs ``package_id`` (champion or challenger)."""
    row = conn.execute(
        "SELECT 1 FROM deployments WHERE prediction_environment_id = ? AND deleted = 0 AND ("
        "observed_model_package_id = ? OR json_extract(desired, '$.model_package_id') = ? "
        "OR EXISTS (SELECT 1 FROM json_each(desired, '$.challenger_ids') WHERE value = ?)"
        ") LIMIT 1",
        (pe_id, package_id, package_id, package_id),
    ).fetchone()
    return row is not None


def heartbeat(
    conn: sqlite3.Connection,
    pe_id: str,
    at_us: int,
    info: dict[str, Any],
    online: Callable[[], EventIn],
) -> bool:
    """Note a heartbeat; True (and an ``online()`` event stored) if the agent came online."""
    row = conn.execute(
        "SELECT online FROM prediction_environments WHERE id = ?", (pe_id,)
    ).fetchone()
    if row is None:
        raise NotFound.of("prediction environment", pe_id)
    conn.execute(
        "UPDATE prediction_environments SET last_heartbeat_at = ?, agent_info = ?, online = 1 "
        "WHERE id = ?",
        (at_us, mapping.dumps(info), pe_id),
    )
    came_online = not row[0]
    if came_online:
        events.insert(conn, [online()])
    return came_online


def mark_offline(
    conn: sqlite3.Connection, cutoff_us: int, offline: Callable[[str], EventIn]
) -> list[str]:
    """Mark silent agents offline and store one ``offline(pe_id)`` event each."""
    rows = conn.execute(
        "UPDATE prediction_environments SET online = 0 "
        "WHERE online = 1 AND last_heartbeat_at < ? RETURNING id",
        (cutoff_us,),
    ).fetchall()
    gone = sorted(row[0] for row in rows)
    if gone:
        events.insert(conn, [offline(pe_id) for pe_id in gone])
    return gone
