"""The admin API (``/admin/...``, bearer token): load, replace, unload and list deployments.

It is a sub-application with its own middleware, so the token check covers
every admin route and no other. Loading a package runs its code (pickles,
``python`` modules): the admin token is that trust boundary.
"""

from __future__ import annotations

import hmac
import re

from aiohttp import web
from aiohttp.typedefs import Handler

from pilothouse.serving.api import bodies, responses
from pilothouse.serving.api.keys import DEPLOYMENTS, ENDPOINTS, PREDICTIONS, SETTINGS
from pilothouse.serving.decoding import load_json
from pilothouse.serving.deployments import DEPLOYMENT_ID, DeploymentRequest
from pilothouse.serving.errors import BadRequestError, UnauthorizedError

_ID_PATTERN = DEPLOYMENT_ID.removeprefix("^").removesuffix("$")


def create_admin_app() -> web.Application:
    """The admin sub-application."""
    app = web.Application(middlewares=[_require_token])
    app.router.add_get("/server", server_endpoints)
    app.router.add_get("/deployments", list_deployments)
    app.router.add_get("/deployments/{id}", get_deployment)
    app.router.add_put("/deployments/{id}", put_deployment)
    app.router.add_delete("/deployments/{id}", delete_deployment)
    app.router.add_get("/deployments/{id}/statistics", deployment_statistics)
    return app


@web.middleware
async def _require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    expected = request.config_dict[SETTINGS].admin_token.get_secret_value().encode()
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise UnauthorizedError("the admin API needs 'Authorization: Bearer <admin token>'")
    return await handler(request)


async def server_endpoints(request: web.Request) -> web.Response:
    """``GET /admin/server``: where this server listens (HTTP, and gRPC when on)."""
    return responses.json(request.config_dict[ENDPOINTS].describe())


async def list_deployments(request: web.Request) -> web.Response:
    """``GET /admin/deployments``."""
    deployments = request.config_dict[DEPLOYMENTS].all()
    return responses.json({"deployments": [d.describe() for d in deployments]})


async def get_deployment(request: web.Request) -> web.Response:
    """``GET /admin/deployments/{id}``."""
    return responses.json(request.config_dict[DEPLOYMENTS].get(request.match_info["id"]).describe())


async def put_deployment(request: web.Request) -> web.Response:
    """``PUT /admin/deployments/{id}``: load or replace; answers once the new model serves."""
    deployment_id = _deployment_id(request)
    change_request = DeploymentRequest.parse(load_json(await bodies.read(request)))
    change = await request.config_dict[DEPLOYMENTS].put(deployment_id, change_request)
    view = change.deployment.describe()
    return responses.json(
        {**view, "replaced": change.replaced}, status=200 if change.replaced else 201
    )


async def delete_deployment(request: web.Request) -> web.Response:
    """``DELETE /admin/deployments/{id}``: unload; in-flight requests finish first."""
    old = await request.config_dict[DEPLOYMENTS].delete(request.match_info["id"])
    return responses.json({"deleted": old.id, "model_package_id": old.champion.package_id})


async def deployment_statistics(request: web.Request) -> web.Response:
    """``GET /admin/deployments/{id}/statistics[?server=S&associations_after=N]``.

    Cumulative counters per loaded model, for the agent to subtract; the
    associations newer than ``associations_after`` when ``server`` is this
    process (all kept otherwise), none with ``associations=false``.
    """
    raw = request.query.get("associations_after", "0")
    if not raw.isdigit():
        raise BadRequestError(f"associations_after: expected a whole number, got {raw!r}")
    wanted = request.query.get("associations", "true") != "false"
    reading = request.config_dict[PREDICTIONS].statistics(
        request.match_info["id"], request.query.get("server"), int(raw) if wanted else None
    )
    return responses.json(reading)


def _deployment_id(request: web.Request) -> str:
    deployment_id = request.match_info["id"]
    if not re.fullmatch(_ID_PATTERN, deployment_id):
        raise BadRequestError(
            f"deployment id {deployment_id!r}: expected letters, digits, '_', '.', '-' "
            "(at most 128, starting with a letter or digit)"
        )
    return deployment_id
