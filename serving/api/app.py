"""The server's aiohttp application: routes, the one error boundary, and resources.

:func:`create_app` builds everything the handlers need (the deployment
registry, the prediction service, the metrics) before the application is
frozen; a ``cleanup_ctx`` generator starts what must run — the task that
reloads the deployments recorded at the last stop, and the challenger worker
— and at shutdown stops them, releases every model and joins the thread
pools off the event loop.

Errors are translated in one place, :func:`_errors`: a
:class:`~serving.errors.ServingError` becomes its status and JSON body (after a
408 for a body too slow to arrive, the connection is closed);
aiohttp's own HTTP errors (unknown route, 405, 413) get a JSON body too;
anything else is a bug, logged with its traceback, answered with a bare 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from modelpkg import PackageError
from serving.api import admin, plain, responses, v2
from serving.api.keys import DEPLOYMENTS, ENDPOINTS, METRICS, PREDICTIONS, SETTINGS
from serving.deployments import DeploymentRegistry
from serving.endpoints import Endpoints
from serving.errors import RequestTimeoutError, ServingError, UnauthorizedError
from serving.inference import PredictionService
from serving.metrics import ServerMetrics
from serving.settings import ServerSettings

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
    tasks = [
        _guarded(app[DEPLOYMENTS].restore(), "restore deployments"),
        _guarded(app[PREDICTIONS].replay_challengers(), "challenger worker"),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await app[DEPLOYMENTS].close()
        for pool in (app[_PREDICT_POOL], app[_LOAD_POOL]):
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


def _guarded(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    """A named task whose failure (not its cancellation) is logged with its name."""
    task = asyncio.create_task(coro, name=name)

    def report(done: asyncio.Task[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.error("task %r failed", name, exc_info=done.exception())

    task.add_done_callback(report)
    return task


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


async def cancel_quietly(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait for it."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
