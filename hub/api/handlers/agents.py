"""The agent channel: desired-state snapshot and heartbeat (the watch stream is in ``watch``)."""

from __future__ import annotations

from aiohttp import web

from pilothouse.hub.api import bodies
from pilothouse.hub.api.schemas import Heartbeat


async def desired_state(request: web.Request) -> web.Response:
    """Everything the PE's agent must run, with the revision to watch from."""
    pe_id = request.match_info["id"]
    bodies.principal(request).require_environment(pe_id)
    return bodies.respond(await bodies.services(request).deployments.desired_state(pe_id))


async def heartbeat(request: web.Request) -> web.Response:
    """The PE's agent is alive."""
    pe_id = request.match_info["id"]
    bodies.principal(request).require_environment(pe_id)
    beat = await bodies.parse(request, Heartbeat)
    await bodies.services(request).presence.heartbeat(pe_id, beat)
    return web.Response(status=204)
