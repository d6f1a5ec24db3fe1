"""``/api/v1/events``: batch ingest (idempotent by id) and filtered, searchable pages."""

from __future__ import annotations

from aiohttp import web

from hub.api import bodies
from hub.api.schemas import EventBatch, EventQuery


async def ingest(request: web.Request) -> web.Response:
    """Store a batch of events; a retried batch adds nothing twice."""
    batch = await bodies.parse(request, EventBatch)
    result = await bodies.services(request).events.ingest(batch, bodies.principal(request))
    return bodies.respond(result)


async def page(request: web.Request) -> web.Response:
    """Events matching the filters, newest first, a page at a time."""
    query = bodies.query(request, EventQuery)
    return bodies.respond(await bodies.services(request).events.page(query))
