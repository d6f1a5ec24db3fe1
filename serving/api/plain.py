"""The plain endpoints: rows in, predictions out; statistics; Prometheus metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pilothouse.serving.api import bodies, responses
from pilothouse.serving.api.keys import METRICS, PREDICTIONS
from pilothouse.serving.protocol import REQUEST_ID


def add_routes(app: web.Application) -> None:
    """Register the plain endpoints."""
    app.router.add_post("/v1/deployments/{id}/predict", predict)
    app.router.add_get("/v1/deployments/{id}/stats", stats)
    app.router.add_get("/metrics", metrics)


async def predict(request: web.Request) -> web.Response:
    """``POST /v1/deployments/{id}/predict`` with ``{"rows": [...]}`` or CSV."""
    body = await bodies.read(request)
    answer, request_id = await request.app[PREDICTIONS].predict(
        request.match_info["id"], body, request.content_type
    )
    return responses.raw(answer, headers={REQUEST_ID: request_id})


async def stats(request: web.Request) -> web.Response:
    """``GET /v1/deployments/{id}/stats``."""
    return responses.json(request.app[PREDICTIONS].stats(request.match_info["id"]))


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text format."""
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
