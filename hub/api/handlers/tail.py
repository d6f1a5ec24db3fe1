"""``GET /api/v1/events/stream``: events as they are stored, as server-sent events.

For the web UI's live activity lists (a browser reads it with ``fetch``, so
the token stays in a header). The stream takes the event list's filters and
sends, after the comment ``: connected``::

    id: <position>
    event: snapshot
    data: {"items": [...newest first...], "next_cursor": ...}

    id: <its position>
    event: event
    data: <EventOut JSON>

    : keep-alive

``snapshot`` comes first (its items are the newest ``backlog`` matching
events, possibly none), unless the client resumes with ``Last-Event-ID`` (or
``?last_event_id=``), a position it was sent: then only what was stored after
it follows. Events follow in the order they were stored, which for events
posted late (an agent's outbox after an outage) is not their time order. A
keep-alive comment is sent after ``keepalive_interval_s`` without events. The
stream ends when the hub shuts down or the client goes away; it owns no task.
"""

from __future__ import annotations

import asyncio

import pydantic_core
from aiohttp import web

from pilothouse.hub.api import bodies
from pilothouse.hub.api.keys import SETTINGS
from pilothouse.hub.api.schemas import EventOut, EventStreamQuery, Page
from pilothouse.hub.service.feed import FeedClosed
from pilothouse.hub.service.tailing import EventTail

CONNECTED = b": connected\n\n"
KEEPALIVE = b": keep-alive\n\n"


async def stream(request: web.Request) -> web.StreamResponse:
    """Stream matching events as they are stored (server-sent events)."""
    query = bodies.query(request, EventStreamQuery)
    tail = bodies.services(request).tail
    seen = tail.version()
    start = await tail.start(query, query.backlog, _resume_after(request, query))
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    try:
        first = CONNECTED
        if start.page is not None:
            first += _snapshot(start.page, start.position)
        await response.write(first)
        settings = request.app[SETTINGS].agents
        lifetime = asyncio.timeout(settings.watch_max_duration_s)
        try:
            async with lifetime:
                keepalive = settings.keepalive_interval_s
                await _follow(response, tail, query, start.position, seen, keepalive)
        except TimeoutError:
            if not lifetime.expired():
                raise
    except (ConnectionResetError, FeedClosed):
        pass  # the client left, or the hub is stopping: the stream ends
    return response


async def _follow(
    response: web.StreamResponse,
    tail: EventTail,
    query: EventStreamQuery,
    position: int,
    seen: int,
    keepalive: float,
) -> None:
    more = True  # look once at once: events may have landed since the snapshot
    while True:
        if not more and not await tail.wait(seen, keepalive):
            await response.write(KEEPALIVE)
            continue
        seen = tail.version()
        chunk = await tail.after(query, position)
        if chunk.events:
            await response.write(b"".join(_event(e, seq) for seq, e in chunk.events))
        position, more = chunk.last, chunk.more


def _snapshot(page: Page[EventOut], position: int) -> bytes:
    data = pydantic_core.to_json(page)
    return b"id: %d\nevent: snapshot\ndata: %s\n\n" % (position, data)


def _event(event: EventOut, position: int) -> bytes:
    data = pydantic_core.to_json(event)
    return b"id: %d\nevent: event\ndata: %s\n\n" % (position, data)


def _resume_after(request: web.Request, query: EventStreamQuery) -> int | None:
    """The position to resume after; None (a fresh start with a snapshot) if not a number."""
    given = request.headers.get("Last-Event-ID", query.last_event_id)
    if given is None or not given.strip():
        return None
    try:
        return int(given.strip())
    except ValueError:
        return None
