"""``/api/v1/prediction-environments``: register, list, read; issue, list, revoke their tokens."""

from __future__ import annotations

from aiohttp import web

from pilothouse.hub.api import bodies
from pilothouse.hub.api.schemas import ListQuery, PredictionEnvironmentCreate


async def create(request: web.Request) -> web.Response:
    """Register a prediction environment."""
    body = await bodies.parse(request, PredictionEnvironmentCreate)
    env = await bodies.services(request).environments.create(body)
    return bodies.respond(env, 201)


async def page(request: web.Request) -> web.Response:
    """List prediction environments, newest first."""
    query = bodies.query(request, ListQuery)
    found = await bodies.services(request).environments.page(query.limit, query.cursor)
    return bodies.respond(found)


async def get(request: web.Request) -> web.Response:
    """Read one prediction environment (its agent may read it too)."""
    pe_id = request.match_info["id"]
    bodies.principal(request).require_environment(pe_id)
    return bodies.respond(await bodies.services(request).environments.get(pe_id))


async def issue_token(request: web.Request) -> web.Response:
    """Issue an agent token for the PE; the secret is in this answer only."""
    token = await bodies.services(request).environments.issue_token(request.match_info["id"])
    return bodies.respond(token, 201)


async def tokens(request: web.Request) -> web.Response:
    """List the PE's agent tokens, newest first, revoked ones too (never their secrets)."""
    query = bodies.query(request, ListQuery)
    environments = bodies.services(request).environments
    return bodies.respond(
        await environments.tokens(request.match_info["id"], query.limit, query.cursor)
    )


async def issue_package_token(request: web.Request) -> web.Response:
    """Issue a read-only package token for the PE (the admin, or the PE's own agent)."""
    pe_id = request.match_info["id"]
    bodies.principal(request).require_environment(pe_id)
    token = await bodies.services(request).environments.issue_package_token(pe_id)
    return bodies.respond(token, 201)


async def package_tokens(request: web.Request) -> web.Response:
    """List the PE's package tokens, newest first, revoked ones too (never their secrets)."""
    query = bodies.query(request, ListQuery)
    environments = bodies.services(request).environments
    return bodies.respond(
        await environments.package_tokens(request.match_info["id"], query.limit, query.cursor)
    )


async def revoke_package_token(request: web.Request) -> web.Response:
    """Revoke a package token (the admin, or the PE's own agent replacing its own)."""
    info = request.match_info
    bodies.principal(request).require_environment(info["id"])
    environments = bodies.services(request).environments
    return bodies.respond(await environments.revoke_package_token(info["id"], info["token_id"]))


async def revoke_token(request: web.Request) -> web.Response:
    """Revoke an agent token: refused from now on; its open watch streams end."""
    environments = bodies.services(request).environments
    info = request.match_info
    return bodies.respond(await environments.revoke_token(info["id"], info["token_id"]))
