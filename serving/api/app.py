"""The server's aiohttp application: routes, the one error boundary, and resources.

:func:`create_app` builds everything the handlers need (the deployment
registry, the prediction service, the metrics) before the application is
frozen; a ``cleanup_ctx`` generator starts what must run — the task that
reloads the deployments recorded at the last stop, and the challenger worker
— and at shutdown stops them, releases every model and joins the thread
pools off the event loop.

Errors are translated in one place, :func:`_errors`: a
:class:`~pilothouse.serving.errors.ServingError` becomes its status and JSON body (after a
408 for a body too slow to arrive, the connection is closed);
aiohttp's own HTTP errors (unknown route, 405, 413) get a JSON body too;
anything else is a bug, logged with its traceback, answered with a bare 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from aiohttp.typedefs import Handler

from pilothouse.foundation.aio import tasks
from pilothouse.foundation.aio.supervisor import RestartPolicy, Supervisor
from pilothouse.modelpkg import PackageError
from pilothouse.serving.api import admin, plain, responses, v2
from pilothouse.serving.api.keys import DEPLOYMENTS, ENDPOINTS, METRICS, PREDICTIONS, SETTINGS
from pilothouse.serving.deployments import DeploymentRegistry
from pilothouse.serving.endpoints import Endpoints
from pilothouse.serving.errors import RequestTimeoutError, ServingError, UnauthorizedError
from pilothouse.serving.inference import PredictionService
from pilothouse.serving.metrics import ServerMetrics
from pilothouse.serving.settings import ServerSettings

log = logging.getLogger(__name__)

_LOAD_POOL = web.AppKey("load pool", ThreadPoolExecutor)
_PREDICT_POOL = web.AppKey("predict pool", ThreadPoolExecutor)


def create_app(settings: ServerSettings) -> web.Application:
    """The prediction server's application."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[_errors])
    load_pool = ThreadPoolExecutor(settings.load_threads, thread_name_prefix="model-load")
    predict_pool = ThreadPoolExecutor(settings.predict_threads, thread_name_prefix="predict")
    deployments = DeploymentRegistry(settings, load_pool)
    app[SETTINGS] = settings
    app[_LOAD_POOL] = load_pool
    app[_PREDICT_POOL] = predict_pool
    app[DEPLOYMENTS] = deployments
    app[PREDICTIONS] = PredictionService(deployments, settings, predict_pool)
    app[METRICS] = ServerMetrics(deployments)
    app[ENDPOINTS] = Endpoints(settings.host)
    app.cleanup_ctx.append(_running)
    v2.add_routes(app)
    plain.add_routes(app)
    app.add_subapp("/admin/", admin.create_admin_app())
    return app


async def _running(app: web.Application) -> AsyncIterator[None]:
    restore = tasks.watched(app[DEPLOYMENTS].restore(), "restore deployments", log)
    supervisor = Supervisor(RestartPolicy(0.1, 5.0, crash_loop_failures=None))
    await supervisor.start_eternal("challenger worker", app[PREDICTIONS].replay_challengers)
    try:
        yield
    finally:
        await supervisor.stop_all()
        if not restore.done():  # a finished one has been logged already if it failed
            await tasks.cancel_and_wait(restore)
        await app[DEPLOYMENTS].close()
        for pool in (app[_PREDICT_POOL], app[_LOAD_POOL]):
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RequestTimeoutError as exc:
        return await _closing(request, responses.json(exc.body(), exc.status))
    except ServingError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, UnauthorizedError) else None
        return responses.json(exc.body(), exc.status, headers)
    except PackageError as exc:  # pragma: no cover - the service layer translates these
        return responses.json({"error": str(exc), "type": "package_error"}, 422)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return responses.json({"error": exc.reason, "type": "http_error"}, exc.status)
    except Exception:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return responses.json({"error": "internal server error", "type": "server_error"}, 500)


async def _closing(request: web.Request, response: web.Response) -> web.Response:
    """Write ``response``, then close the connection at once.

    Left to itself, aiohttp would go on reading (and discarding) the rest of a
    half-sent body for its lingering time; a client too slow to send its body
    gets its answer and loses the connection instead.
    """
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response
