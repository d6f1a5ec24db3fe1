"""The agent's optional local HTTP endpoint: ``/healthz`` and ``/metrics``.

``/healthz`` answers 200 when every supervised task is alive and 503 with the
list of tasks that are not; ``/metrics`` is the Prometheus text format of the
agent's own registry. The runner never installs signal handlers: the agent
may be embedded in someone else's process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

HealthView = Callable[[], Mapping[str, Any]]

_HEALTH: web.AppKey[HealthView] = web.AppKey("health", Callable)  # type: ignore[arg-type]
_REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("registry", CollectorRegistry)


def create_app(health: HealthView, registry: CollectorRegistry) -> web.Application:
    """Build the endpoint's application."""
    app = web.Application()
    app[_HEALTH] = health
    app[_REGISTRY] = registry
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    return app


async def _healthz(request: web.Request) -> web.Response:
    view = dict(request.app[_HEALTH]())
    tasks: Mapping[str, bool] = view.get("tasks", {})
    down = sorted(name for name, alive in tasks.items() if not alive)
    view["status"] = "ok" if not down else "degraded"
    view["down"] = down
    return web.json_response(view, status=200 if not down else 503)


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[_REGISTRY])
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


class HttpEndpoint:
    """Serves the app on host:port for as long as its task runs."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._app = app
        self._host = host
        self._port = port
        self.port: int | None = None

    async def run(self, started: Callable[[], None]) -> None:
        """Listen until cancelled; ``started`` once the socket is bound."""
        runner = web.AppRunner(self._app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
            self.port = int(runner.addresses[0][1])
            started()
            await asyncio.Event().wait()  # serve until cancelled
        finally:
            await runner.cleanup()
