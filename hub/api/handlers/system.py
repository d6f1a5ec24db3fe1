"""Probes, metrics and the API description: ``/healthz``, ``/readyz``, ``/metrics``, OpenAPI."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pilothouse.hub.api import bodies
from pilothouse.hub.api.keys import BACKEND, METRICS, OPENAPI
from pilothouse.hub.api.schemas import ErrorBody


async def healthz(request: web.Request) -> web.Response:
    """The process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """The database answers too."""
    try:
        await bodies.services(request).store.ping()
    except Exception as exc:
        body = ErrorBody(error="not_ready", message=f"the database does not answer: {exc}")
        return bodies.respond(body, 503)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format of the hub's own registry."""
    hub_metrics = request.app[METRICS]
    hub_metrics.lease_held.set(1 if request.app[BACKEND].lease.held else 0)
    response = web.Response(body=generate_latest(hub_metrics.registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this API."""
    return web.Response(body=request.app[OPENAPI], content_type="application/json")
