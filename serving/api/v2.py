"""Open Inference Protocol (V2) over HTTP/JSON; the V2 model name is the deployment id.

``/v2/models/{name}/versions/{version}/...`` addresses the champion or a
challenger by model package id; without a version, the champion.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from serving import decoding
from serving.api import bodies, responses
from serving.api.keys import DEPLOYMENTS, PREDICTIONS
from serving.deployments import Deployment
from serving.served import ServedModel

_PLATFORMS = {
    "sklearn": "sklearn",
    "onnx": "onnxruntime_onnx",
    "python": "python",
    "mlflow": "mlflow",
}
_FEATURE_TYPES = {"float": "FP64", "integer": "INT64", "boolean": "BOOL", "string": "BYTES"}
HEADER_LENGTH = "Inference-Header-Content-Length"
"""Binary tensor data extension: length of the JSON header that starts the body."""
SERVER_NAME = "pilothouse"
SERVER_VERSION = "0.1.0"
EXTENSIONS = ("binary_tensor_data",)


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
        {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": list(EXTENSIONS)}
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
    return responses.json(metadata(deployment, model))


async def infer(request: web.Request) -> web.Response:
    """``POST /v2/models/{name}/infer``."""
    body = await bodies.read(request)
    answer, header_length = await request.app[PREDICTIONS].infer(
        request.match_info["name"],
        request.match_info.get("version"),
        body,
        request.headers.get(HEADER_LENGTH),
    )
    if header_length is None:
        return responses.raw(answer)
    return web.Response(
        body=answer,
        headers={HEADER_LENGTH: str(header_length)},
        content_type="application/octet-stream",
    )


def metadata(deployment: Deployment, model: ServedModel) -> dict[str, Any]:
    """The V2 model metadata of one version of a deployment."""
    manifest = model.model.manifest
    inputs = [
        {"name": f.name, "datatype": _FEATURE_TYPES[f.type.value], "shape": [-1]}
        for f in manifest.features
    ]
    if manifest.is_classifier:
        kinds = {type(c) for c in manifest.target.classes or ()}
        label_type = "BYTES" if kinds <= {str} else "INT64"
    else:
        label_type = "FP64"
    outputs: list[dict[str, Any]] = [
        {"name": decoding.PREDICT, "datatype": label_type, "shape": [-1]}
    ]
    if model.model.supports_proba:
        outputs.append(
            {
                "name": decoding.PREDICT_PROBA,
                "datatype": "FP64",
                "shape": [-1, len(model.model.classes)],
            }
        )
    return {
        "name": deployment.id,
        "versions": [m.package_id for m in (deployment.champion, *deployment.challengers)],
        "platform": _PLATFORMS[manifest.format.value],
        "inputs": inputs,
        "outputs": outputs,
        "parameters": {
            "model_package_id": model.package_id,
            "model_name": manifest.name,
            "model_version": manifest.version,
            "target": manifest.target.model_dump(mode="json", exclude_none=True),
            "features": list(manifest.feature_names),
        },
    }


def _lookup(request: web.Request) -> tuple[Deployment, ServedModel]:
    deployment = request.app[DEPLOYMENTS].get(request.match_info["name"])
    version = request.match_info.get("version")
    return deployment, deployment.version(version) if version else deployment.champion
