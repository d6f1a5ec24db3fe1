"""``/api/v1/settings/retention``: how long events are kept (admin only)."""

from __future__ import annotations

from aiohttp import web

from pilothouse.hub.api import bodies
from pilothouse.hub.api.schemas import RetentionUpdate


async def get(request: web.Request) -> web.Response:
    """The retention in force and what the last purge removed."""
    return bodies.respond(await bodies.services(request).retention.get())


async def put(request: web.Request) -> web.Response:
    """Set the retention in days; older events are purged at once, in the background."""
    body = await bodies.parse(request, RetentionUpdate)
    return bodies.respond(await bodies.services(request).retention.set(body.days))
