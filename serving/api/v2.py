"""Open Inference Protocol (V2) over HTTP/JSON; the V2 model name is the deployment id.

``/v2/models/{name}/versions/{version}/...`` addresses the champion or a
challenger by model package id; without a version, the champion.
"""

from __future__ import annotations

from aiohttp import web

from pilothouse.serving import protocol
from pilothouse.serving.api import bodies, responses
from pilothouse.serving.api.keys import DEPLOYMENTS, PREDICTIONS
from pilothouse.serving.deployments import Deployment
from pilothouse.serving.served import ServedModel

HEADER_LENGTH = "Inference-Header-Content-Length"
"""Binary tensor data extension: length of the JSON header that starts the body."""


def add_routes(app: web.Application) -> None:
    """Register the V2 endpoints."""
    r = app.router
    r.add_get("/v2", server_metadata)
    r.add_get("/v2/health/live", live)
    r.add_get("/v2/health/ready", ready)
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        r.add_get(prefix, model_metadata)
        r.add_get(f"{prefix}/ready", model_ready)
        r.add_post(f"{prefix}/infer", infer)


async def server_metadata(request: web.Request) -> web.Response:
    """``GET /v2``."""
    return responses.json(
        {
            "name": protocol.SERVER_NAME,
            "version": protocol.SERVER_VERSION,
            "extensions": list(protocol.EXTENSIONS),
        }
    )


async def live(request: web.Request) -> web.Response:
    """``GET /v2/health/live``: the process answers."""
    return responses.json({"live": True})


async def ready(request: web.Request) -> web.Response:
    """``GET /v2/health/ready``: deployments recorded at start are loaded (or failed)."""
    is_ready = request.app[DEPLOYMENTS].ready.is_set()
    return responses.json({"ready": is_ready}, status=200 if is_ready else 503)


async def model_ready(request: web.Request) -> web.Response:
    """``GET /v2/models/{name}/ready``: 200 when it serves; 404 unknown; 503 loading."""
    deployment, model = _lookup(request)
    return responses.json({"name": deployment.id, "version": model.package_id, "ready": True})


async def model_metadata(request: web.Request) -> web.Response:
    """``GET /v2/models/{name}``: name, versions, platform, inputs, outputs."""
    deployment, model = _lookup(request)
    return responses.json(protocol.metadata(deployment, model))


async def infer(request: web.Request) -> web.Response:
    """``POST /v2/models/{name}/infer``."""
    body = await bodies.read(request)
    answer, header_length, request_id = await request.app[PREDICTIONS].infer(
        request.match_info["name"],
        request.match_info.get("version"),
        body,
        request.headers.get(HEADER_LENGTH),
    )
    if header_length is None:
        return responses.raw(answer, headers={protocol.REQUEST_ID: request_id})
    return web.Response(
        body=answer,
        headers={HEADER_LENGTH: str(header_length), protocol.REQUEST_ID: request_id},
        content_type="application/octet-stream",
    )


def _lookup(request: web.Request) -> tuple[Deployment, ServedModel]:
    deployment = request.app[DEPLOYMENTS].get(request.match_info["name"])
    version = request.match_info.get("version")
    return deployment, deployment.version(version) if version else deployment.champion
