"""``/api/v1/notification-channels``, ``…-policies`` and ``…-deliveries`` (admin only)."""

from __future__ import annotations

from aiohttp import web

from pilothouse.hub.api import bodies
from pilothouse.hub.api.schemas import (
    DeliveryQuery,
    ListQuery,
    NotificationChannelCreate,
    NotificationChannelUpdate,
    NotificationPolicyCreate,
    NotificationPolicyUpdate,
)


async def create_channel(request: web.Request) -> web.Response:
    """Add a channel; a webhook channel without a secret gets one, shown in this answer only."""
    body = await bodies.parse(request, NotificationChannelCreate)
    created = await bodies.services(request).notifications.create_channel(body)
    return bodies.respond(created, 201)


async def page_channels(request: web.Request) -> web.Response:
    """List channels, newest first (URLs masked, secrets never shown)."""
    query = bodies.query(request, ListQuery)
    notifications = bodies.services(request).notifications
    return bodies.respond(await notifications.page_channels(query.limit, query.cursor))


async def get_channel(request: web.Request) -> web.Response:
    """Read one channel (URL masked, secret never shown)."""
    notifications = bodies.services(request).notifications
    return bodies.respond(await notifications.get_channel(request.match_info["id"]))


async def update_channel(request: web.Request) -> web.Response:
    """Change a channel's name, URL or secret; what is left out stays."""
    body = await bodies.parse(request, NotificationChannelUpdate)
    notifications = bodies.services(request).notifications
    return bodies.respond(await notifications.update_channel(request.match_info["id"], body))


async def delete_channel(request: web.Request) -> web.Response:
    """Delete a channel that no policy sends to (409 otherwise)."""
    await bodies.services(request).notifications.delete_channel(request.match_info["id"])
    return web.Response(status=204)


async def test_channel(request: web.Request) -> web.Response:
    """Send a test message now (one attempt) and answer with its delivery record."""
    notifications = bodies.services(request).notifications
    return bodies.respond(await notifications.test_channel(request.match_info["id"]))


async def create_policy(request: web.Request) -> web.Response:
    """Add a policy: which events go to which channel, grouped and repeated how."""
    body = await bodies.parse(request, NotificationPolicyCreate)
    return bodies.respond(await bodies.services(request).notifications.create_policy(body), 201)


async def page_policies(request: web.Request) -> web.Response:
    """List policies, newest first."""
    query = bodies.query(request, ListQuery)
    notifications = bodies.services(request).notifications
    return bodies.respond(await notifications.page_policies(query.limit, query.cursor))


async def get_policy(request: web.Request) -> web.Response:
    """Read one policy."""
    notifications = bodies.services(request).notifications
    return bodies.respond(await notifications.get_policy(request.match_info["id"]))


async def update_policy(request: web.Request) -> web.Response:
    """Change a policy; what is left out stays. Disabling it drops what it was waiting to send."""
    body = await bodies.parse(request, NotificationPolicyUpdate)
    notifications = bodies.services(request).notifications
    return bodies.respond(await notifications.update_policy(request.match_info["id"], body))


async def delete_policy(request: web.Request) -> web.Response:
    """Delete a policy (its past deliveries stay in the log)."""
    await bodies.services(request).notifications.delete_policy(request.match_info["id"])
    return web.Response(status=204)


async def page_deliveries(request: web.Request) -> web.Response:
    """The delivery log, newest first: each message, its state and every attempt."""
    query = bodies.query(request, DeliveryQuery)
    return bodies.respond(await bodies.services(request).notifications.page_deliveries(query))


async def get_delivery(request: web.Request) -> web.Response:
    """One delivery and every attempt at it."""
    notifications = bodies.services(request).notifications
    return bodies.respond(await notifications.get_delivery(request.match_info["id"]))
