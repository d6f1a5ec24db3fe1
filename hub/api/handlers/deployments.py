"""``/api/v1/deployments``: create, list, read, act on, delete; observed status; health."""

from __future__ import annotations

from aiohttp import web

from pilothouse.hub.api import bodies
from pilothouse.hub.api.schemas import (
    ActionRequest,
    DeploymentCreate,
    DeploymentListQuery,
    ObservedStatus,
)


async def create(request: web.Request) -> web.Response:
    """Create a deployment, desired launched at generation 1."""
    body = await bodies.parse(request, DeploymentCreate)
    return bodies.respond(await bodies.services(request).deployments.create(body), 201)


async def page(request: web.Request) -> web.Response:
    """List live deployments, newest first, optionally of one PE."""
    query = bodies.query(request, DeploymentListQuery)
    deployments = bodies.services(request).deployments
    found = await deployments.page(query.prediction_environment_id, query.limit, query.cursor)
    return bodies.respond(found)


async def get(request: web.Request) -> web.Response:
    """Read one deployment: desired, observed, service health."""
    deployment_id = request.match_info["id"]
    return bodies.respond(await bodies.services(request).deployments.get(deployment_id))


async def act(request: web.Request) -> web.Response:
    """Ask for an action; the answer is the deployment at its new generation."""
    body = await bodies.parse(request, ActionRequest)
    deployment_id = request.match_info["id"]
    return bodies.respond(await bodies.services(request).deployments.act(deployment_id, body))


async def delete(request: web.Request) -> web.Response:
    """Remove the deployment from the desired state; its agent stops it."""
    await bodies.services(request).deployments.delete(request.match_info["id"])
    return web.Response(status=202)


async def observe(request: web.Request) -> web.Response:
    """The agent reports what it observes of one of its deployments."""
    body = await bodies.parse(request, ObservedStatus)
    deployments = bodies.services(request).deployments
    await deployments.observe(request.match_info["id"], body, bodies.principal(request))
    return web.Response(status=204)


async def service_health(request: web.Request) -> web.Response:
    """The deployment's service health and the events behind it."""
    view = await bodies.services(request).events.service_health(request.match_info["id"])
    return bodies.respond(view)
