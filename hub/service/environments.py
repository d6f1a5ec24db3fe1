"""Prediction environments: registering them, listing them, issuing and revoking their tokens.

Revoking a token wakes the PE's watch streams (through the change feed), so a
stream of the revoked token sees at once that it must end.
"""

from __future__ import annotations

from pilothouse.hub import clock
from pilothouse.hub.api.schemas import (
    AgentInfo,
    AgentToken,
    AgentTokenInfo,
    PackageToken,
    PackageTokenInfo,
    Page,
    PredictionEnvironment,
    PredictionEnvironmentCreate,
)
from pilothouse.hub.service import auth, cursors
from pilothouse.hub.service.feed import ChangeFeed
from pilothouse.hub.service.naming import new_id
from pilothouse.hub.store.interface import Store
from pilothouse.hub.store.records import Cursor, PageQuery


class Environments:
    """Create, read and issue tokens for prediction environments."""

    def __init__(self, store: Store, feed: ChangeFeed) -> None:
        self._store = store
        self._feed = feed

    async def create(self, body: PredictionEnvironmentCreate) -> PredictionEnvironment:
        """Register a PE; ``Conflict`` if the name is taken."""
        env = PredictionEnvironment(
            id=new_id("pe"),
            name=body.name,
            platform=body.platform,
            description=body.description,
            plugin_settings=body.plugin_settings,
            created_at=clock.now(),
            agent=AgentInfo(online=False),
        )
        await self._store.add_environment(env)
        return env

    async def get(self, pe_id: str) -> PredictionEnvironment:
        """One PE; ``NotFound`` if unknown."""
        return await self._store.get_environment(pe_id)

    async def page(self, limit: int, cursor: str | None) -> Page[PredictionEnvironment]:
        """A page of PEs, newest first."""
        query = PageQuery(limit + 1, cursors.decode(cursor))
        items, after = cursors.split(await self._store.list_environments(query), limit, _key)
        return Page[PredictionEnvironment](items=items, next_cursor=after)

    async def issue_token(self, pe_id: str) -> AgentToken:
        """A new agent token for ``pe_id``; only its hash is kept."""
        token = auth.new_agent_token()
        issued = AgentToken(
            id=new_id("tok"), token=token, prediction_environment_id=pe_id, created_at=clock.now()
        )
        await self._store.add_agent_token(
            issued.id, pe_id, auth.token_hash(token), clock.to_us(issued.created_at)
        )
        return issued

    async def tokens(self, pe_id: str, limit: int, cursor: str | None) -> Page[AgentTokenInfo]:
        """A page of the PE's agent tokens (revoked ones too), newest first; no secrets."""
        query = PageQuery(limit + 1, cursors.decode(cursor))
        found = await self._store.list_agent_tokens(pe_id, query)
        items, after = cursors.split(found, limit, _token_key)
        return Page[AgentTokenInfo](items=items, next_cursor=after)

    async def issue_package_token(self, pe_id: str) -> PackageToken:
        """A new read-only package token for ``pe_id``; only its hash is kept."""
        token = auth.new_package_token()
        issued = PackageToken(
            id=new_id("pkt"), token=token, prediction_environment_id=pe_id, created_at=clock.now()
        )
        created_us = clock.to_us(issued.created_at)
        await self._store.add_agent_token(
            issued.id, pe_id, auth.token_hash(token), created_us, kind="package"
        )
        return issued

    async def package_tokens(
        self, pe_id: str, limit: int, cursor: str | None
    ) -> Page[PackageTokenInfo]:
        """A page of the PE's package tokens (revoked ones too), newest first; no secrets."""
        query = PageQuery(limit + 1, cursors.decode(cursor))
        found = await self._store.list_agent_tokens(pe_id, query, kind="package")
        items, after = cursors.split(found, limit, _token_key)
        return Page[PackageTokenInfo](
            items=[PackageTokenInfo.model_validate(i, from_attributes=True) for i in items],
            next_cursor=after,
        )

    async def revoke_package_token(self, pe_id: str, token_id: str) -> PackageTokenInfo:
        """Revoke one of the PE's package tokens: refused from the next request on."""
        revoked = await self._store.revoke_agent_token(
            pe_id, token_id, clock.now_us(), kind="package"
        )
        return PackageTokenInfo.model_validate(revoked, from_attributes=True)

    async def revoke_token(self, pe_id: str, token_id: str) -> AgentTokenInfo:
        """Revoke one of the PE's agent tokens; its open watch streams end."""
        revoked = await self._store.revoke_agent_token(pe_id, token_id, clock.now_us())
        self._feed.publish(pe_id)  # wake the PE's streams: a revoked one ends
        return revoked


def _key(env: PredictionEnvironment) -> Cursor:
    return Cursor(clock.to_us(env.created_at), env.id)


def _token_key(token: AgentTokenInfo) -> Cursor:
    return Cursor(clock.to_us(token.created_at), token.id)
