"""SQL of prediction environments, agent tokens and agent presence, on PostgreSQL.

A heartbeat locks its PE's row while it reads whether the agent was online, so
when two replicas take heartbeats of one agent at once only one records
``agent.online``; marking silent agents offline is one conditional ``UPDATE``,
so each transition is recorded once whichever replica makes it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from pilothouse.hub.api.schemas import AgentTokenInfo, EventIn, PredictionEnvironment
from pilothouse.hub.errors import NotFound
from pilothouse.hub.store import mapping
from pilothouse.hub.store.postgres import events
from pilothouse.hub.store.postgres.db import Connection, page_clause, taken
from pilothouse.hub.store.records import PageQuery, TokenKind

_SELECT = f"SELECT {mapping.ENVIRONMENT_COLUMNS}{mapping.MANAGED} FROM prediction_environments"


async def add(conn: Connection, env: PredictionEnvironment) -> None:
    """Insert a PE; ``Conflict`` if the name is taken."""
    with taken(f"a prediction environment named {env.name!r} exists already"):
        await conn.execute(
            "INSERT INTO prediction_environments (id, name, platform, description, "
            "plugin_settings, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            *mapping.environment_row(env),
        )


async def get(conn: Connection, pe_id: str, *, lock: bool = False) -> PredictionEnvironment:
    """One PE, or ``NotFound`` (``lock``: and hold its row until the transaction ends)."""
    row = await conn.fetchrow(
        f"{_SELECT} WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        pe_id,
    )
    if row is None:
        raise NotFound.of("prediction environment", pe_id)
    return mapping.environment(row)


async def page(conn: Connection, query: PageQuery) -> list[PredictionEnvironment]:
    """PEs, newest first."""
    tail, params = page_clause(query, "created_at", 1)
    rows = await conn.fetch(
        f"{_SELECT} WHERE true{tail}",
        *params,
    )
    return [mapping.environment(row) for row in rows]


async def known(conn: Connection, ids: Collection[str]) -> set[str]:
    """Which of ``ids`` exist."""
    rows = await conn.fetch(
        "SELECT id FROM prediction_environments WHERE id = any($1::text[])", list(ids)
    )
    return {row[0] for row in rows}


async def add_token(
    conn: Connection,
    token_id: str,
    pe_id: str,
    token_sha256: str,
    created_us: int,
    kind: TokenKind = "agent",
) -> None:
    """Store a token's hash (the PE must exist)."""
    await get(conn, pe_id)
    await conn.execute(
        "INSERT INTO agent_tokens (id, prediction_environment_id, token_sha256, created_at, kind) "
        "VALUES ($1, $2, $3, $4, $5)",
        token_id,
        pe_id,
        token_sha256,
        created_us,
        kind,
    )


async def for_token(conn: Connection, token_sha256: str) -> tuple[str, str, TokenKind] | None:
    """The id, PE and kind of the live (not revoked) token with this hash."""
    row = await conn.fetchrow(
        "SELECT id, prediction_environment_id, kind FROM agent_tokens "
        "WHERE token_sha256 = $1 AND revoked_at IS NULL",
        token_sha256,
    )
    return None if row is None else (str(row[0]), str(row[1]), row[2])


async def token_live(conn: Connection, token_id: str) -> bool:
    """Whether the token exists and is not revoked."""
    found = await conn.fetchval(
        "SELECT true FROM agent_tokens WHERE id = $1 AND revoked_at IS NULL", token_id
    )
    return found is not None


async def tokens(
    conn: Connection, pe_id: str, query: PageQuery, kind: TokenKind = "agent"
) -> list[AgentTokenInfo]:
    """The PE's tokens of ``kind`` (revoked ones too), newest first."""
    await get(conn, pe_id)
    tail, params = page_clause(query, "created_at", 3)
    rows = await conn.fetch(
        f"SELECT {mapping.TOKEN_COLUMNS} FROM agent_tokens "
        f"WHERE prediction_environment_id = $1 AND kind = $2{tail}",
        pe_id,
        kind,
        *params,
    )
    return [mapping.token(row) for row in rows]


async def revoke_token(
    conn: Connection, pe_id: str, token_id: str, at_us: int, kind: TokenKind = "agent"
) -> AgentTokenInfo:
    """Revoke one of the PE's tokens of ``kind`` (again: keeps the first revocation time)."""
    await conn.execute(
        "UPDATE agent_tokens SET revoked_at = $1 WHERE id = $2 AND prediction_environment_id = $3 "
        "AND kind = $4 AND revoked_at IS NULL",
        at_us,
        token_id,
        pe_id,
        kind,
    )
    row = await conn.fetchrow(
        f"SELECT {mapping.TOKEN_COLUMNS} FROM agent_tokens "
        "WHERE id = $1 AND prediction_environment_id = $2 AND kind = $3",
        token_id,
        pe_id,
        kind,
    )
    if row is None:
        raise NotFound.of(f"{kind} token", token_id)
    return mapping.token(row)


async def uses_package(conn: Connection, pe_id: str, package_id: str) -> bool:
    """Whether a live deployment of the PE wants or runs ``package_id`` (champion or challenger)."""
    found = await conn.fetchval(
        "SELECT true FROM deployments WHERE prediction_environment_id = $1 AND NOT deleted AND ("
        "observed_model_package_id = $2 OR desired::jsonb ->> 'model_package_id' = $2 "
        "OR desired::jsonb -> 'challenger_ids' ? $2) LIMIT 1",
        pe_id,
        package_id,
    )
    return found is not None


async def heartbeat(
    conn: Connection, pe_id: str, at_us: int, info: dict[str, Any], online: Callable[[], EventIn]
) -> bool:
    """Note a heartbeat; True (and an ``online()`` event stored) if the agent came online."""
    was_online = await conn.fetchval(
        "SELECT online FROM prediction_environments WHERE id = $1 FOR UPDATE", pe_id
    )
    if was_online is None:
        raise NotFound.of("prediction environment", pe_id)
    await conn.execute(
        "UPDATE prediction_environments SET last_heartbeat_at = $1, agent_info = $2, "
        "online = true WHERE id = $3",
        at_us,
        mapping.dumps(info),
        pe_id,
    )
    if not was_online:
        await events.insert(conn, [online()])
    return not was_online


async def mark_offline(
    conn: Connection, cutoff_us: int, offline: Callable[[str], EventIn]
) -> list[str]:
    """Mark silent agents offline and store one ``offline(pe_id)`` event each."""
    rows = await conn.fetch(
        "UPDATE prediction_environments SET online = false "
        "WHERE online AND last_heartbeat_at < $1 RETURNING id",
        cutoff_us,
    )
    gone = sorted(row[0] for row in rows)
    if gone:
        await events.insert(conn, [offline(pe_id) for pe_id in gone])
    return gone
