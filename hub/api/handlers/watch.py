"""``GET /api/v1/prediction-environments/{id}/watch``: the PE's desired state as it changes (SSE).

On connect the stream replays, for each deployment changed after the client's
``Last-Event-ID`` (header, or ``?last_event_id=``; absent means 0, from the
beginning), its latest change — a newer generation supersedes the older ones —
then pushes each committed change as it happens::

    id: <revision>
    event: deployment
    data: <DesiredDeployment JSON>

    id: <revision>
    event: removed
    data: {"id": …, "generation": N}

    event: resync
    data: {}

    : keep-alive

The first bytes are the comment ``: connected``. ``resync`` means the hub
cannot replay from that id (not a revision of this PE, ahead of it, or not a
number that fits 64 bits): the client should fetch ``…/desired-state`` again;
the stream then goes on from the current revision. A keep-alive comment is
sent after ``keepalive_interval_s`` without changes. The stream ends cleanly
when the hub shuts down (the change feed closes), the client goes away, its
agent token is revoked (checked at every wake-up; a revocation wakes the PE's
streams), or after ``watch_max_duration_s`` if set; it owns no task.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiohttp import web

from pilothouse.hub.api import bodies
from pilothouse.hub.api.keys import METRICS, SETTINGS
from pilothouse.hub.api.schemas import INT64_MAX, WatchQuery
from pilothouse.hub.service.auth import Principal
from pilothouse.hub.service.feed import FeedClosed
from pilothouse.hub.services import Services
from pilothouse.hub.store.records import Change

log = logging.getLogger("pilothouse.hub.watch")

CONNECTED = b": connected\n\n"  # sends the headers at once (aiohttp defers them)
KEEPALIVE = b": keep-alive\n\n"
RESYNC = b"event: resync\ndata: {}\n\n"


async def watch(request: web.Request) -> web.StreamResponse:
    """Stream the PE's desired-state changes as server-sent events."""
    pe_id = request.match_info["id"]
    who = bodies.principal(request)
    who.require_environment(pe_id)
    services = bodies.services(request)
    seen = services.feed.version(pe_id)
    replay = await services.store.replay(pe_id, _resume_after(request) or 0)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    gauge = request.app[METRICS].sse_clients
    gauge.inc()
    try:
        if replay is None:
            await response.write(CONNECTED + RESYNC)
            position = await services.store.revision(pe_id)
        else:
            await response.write(CONNECTED + encode(replay.changes))
            position = replay.revision
        settings = request.app[SETTINGS].agents
        lifetime = asyncio.timeout(settings.watch_max_duration_s)
        try:
            async with lifetime:
                keepalive = settings.keepalive_interval_s
                await _follow(response, services, who, pe_id, position, seen, keepalive)
        except TimeoutError:
            if not lifetime.expired():
                raise
    except (ConnectionResetError, FeedClosed):
        pass  # the client left, or the hub is stopping: the stream ends
    finally:
        gauge.dec()
    return response


async def _follow(
    response: web.StreamResponse,
    services: Services,
    who: Principal,
    pe_id: str,
    position: int,
    seen: int,
    keepalive: float,
) -> None:
    while True:
        woken = await services.feed.wait(pe_id, seen, keepalive)
        if not await services.auth.still_valid(who):
            log.info("watch stream of %s ends: its agent token was revoked", pe_id)
            return
        if not woken:
            await response.write(KEEPALIVE)
            continue
        seen = services.feed.version(pe_id)
        replay = await services.store.replay(pe_id, position)
        if replay is None:  # cannot happen while revisions only grow; be safe
            await response.write(RESYNC)
            position = await services.store.revision(pe_id)
            continue
        if replay.changes:
            await response.write(encode(replay.changes))
        position = replay.revision


def encode(changes: tuple[Change, ...]) -> bytes:
    """The changes as SSE messages."""
    out = []
    for change in changes:
        if change.desired is None:
            data = orjson.dumps({"id": change.deployment_id, "generation": change.generation})
            out.append(b"id: %d\nevent: removed\ndata: %s\n\n" % (change.seq, data))
        else:
            data = change.desired.model_dump_json().encode()
            out.append(b"id: %d\nevent: deployment\ndata: %s\n\n" % (change.seq, data))
    return b"".join(out)


def _resume_after(request: web.Request) -> int | None:
    """The revision to resume after; -1 (forcing a resync) if it is not a 64-bit number."""
    given = request.headers.get("Last-Event-ID")
    if given is None:
        given = bodies.query(request, WatchQuery).last_event_id
    if given is None or not given.strip():
        return None
    try:
        after = int(given.strip())
    except ValueError:
        return -1
    return after if after <= INT64_MAX else -1
