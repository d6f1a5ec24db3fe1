"""Running the server until asked to stop.

:func:`serve` installs no signal handlers and cancels nothing it did not
create, so it can be embedded (``await serve(settings, stop=event)``); the
``pilothouse serve`` command is what turns SIGTERM/SIGINT into ``stop``. With
``grpc_port``, the gRPC endpoint (:mod:`pilothouse.serving.grpcapi`) listens too, on the
same event loop. At stop, the listening sockets close, in-flight requests
(REST and gRPC) get ``shutdown_grace_s`` to finish, then the models are
released. Connections idle (or with incomplete headers) for
``keepalive_timeout_s`` are closed.

Once the deployments recorded at the last stop are loaded, :func:`serve`
calls ``gc.freeze()`` (setting ``gc_freeze``): the hundreds of thousands of
objects that imports and frameworks leave behind move out of the cyclic
collector's reach, so a full collection no longer walks them in the middle of
a request. Objects are still freed by reference counting; only reference
cycles among them (say, a ``python``-format module restored at start and
replaced later) are never collected — a bounded, once-per-start cost. An
embedded server (``create_app`` in someone else's process) never freezes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from pilothouse.serving.api.app import create_app
from pilothouse.serving.api.keys import DEPLOYMENTS, ENDPOINTS, PREDICTIONS
from pilothouse.serving.settings import ServerSettings

if TYPE_CHECKING:
    from pilothouse.serving.grpcapi.server import GrpcEndpoint

log = logging.getLogger(__name__)


async def serve(
    settings: ServerSettings,
    *,
    stop: asyncio.Event | None = None,
    started: Callable[[int], None] | None = None,
) -> None:
    """Serve until ``stop`` is set (forever without one); ``started(port)`` once listening."""
    app = create_app(settings)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=settings.shutdown_grace_s,
        keepalive_timeout=settings.keepalive_timeout_s,
    )
    await runner.setup()
    grpc_endpoint: GrpcEndpoint | None = None
    try:
        site = web.TCPSite(runner, settings.host, settings.port, backlog=1024)
        await site.start()
        port = int(runner.addresses[0][1])
        app[ENDPOINTS].http_port = port
        log.info("prediction server listening on http://%s:%d", settings.host, port)
        if settings.grpc_port is not None:
            from pilothouse.serving.grpcapi import server as grpc_server

            grpc_endpoint = await grpc_server.start(settings, app[DEPLOYMENTS], app[PREDICTIONS])
            app[ENDPOINTS].grpc_port = grpc_endpoint.port
            log.info(
                "gRPC (Open Inference Protocol) listening on %s:%d",
                settings.host,
                grpc_endpoint.port,
            )
        if started is not None:
            started(port)
        stopping = asyncio.ensure_future((stop or asyncio.Event()).wait())
        loaded = asyncio.ensure_future(app[DEPLOYMENTS].ready.wait())
        try:
            await asyncio.wait({stopping, loaded}, return_when=asyncio.FIRST_COMPLETED)
            if loaded.done() and not stopping.done() and settings.gc_freeze:
                gc.freeze()
            await stopping
        finally:
            for waiter in (stopping, loaded):
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
        log.info("prediction server stopping")
    finally:
        if grpc_endpoint is not None:
            await grpc_endpoint.stop(settings.shutdown_grace_s)
        await runner.cleanup()
