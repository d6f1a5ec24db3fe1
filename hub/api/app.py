"""The hub's aiohttp application, built the way aiohttp documents it.

``create_app(settings)`` returns a ``web.Application`` whose state lives under
typed ``web.AppKey``s. Resources are ``cleanup_ctx`` generators, opened in
order at startup and closed in reverse at cleanup:

1. the store (SQLite threads, migrations), blob directory and admin token,
   and the services over them;
2. the presence watcher, a guarded background task, cancelled and awaited.

``on_shutdown`` closes the change feed first, so every watch stream ends
before aiohttp waits for handlers and before the store closes. Routes come
from :data:`hub.api.routes.ROUTES`, which also yields the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from importlib import metadata

import orjson
from aiohttp import web

from hub.api import keys, middleware, openapi, routes
from hub.service import auth, services, tasks
from hub.service.blobs import BlobStore
from hub.service.feed import ChangeFeed
from hub.settings import HubSettings
from hub.store.sqlite.store import open_sqlite
from hub.telemetry import HubMetrics

log = logging.getLogger("pilothouse.hub")


def create_app(settings: HubSettings) -> web.Application:
    """The hub as an aiohttp application (not yet started)."""
    app = web.Application(
        client_max_size=settings.limits.max_request_bytes,
        middlewares=[middleware.metrics, middleware.errors, middleware.auth],
    )
    app[keys.SETTINGS] = settings
    app[keys.METRICS] = HubMetrics()
    access = {}
    for route in routes.ROUTES:
        access[app.router.add_route(route.method, route.path, route.handler)] = route.access
    app[keys.ACCESS] = access
    app[keys.OPENAPI] = orjson.dumps(openapi.document(routes.ROUTES, version=VERSION))
    app.cleanup_ctx.append(_services)
    app.cleanup_ctx.append(_background)
    app.on_shutdown.append(_end_streams)
    return app


async def _services(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    blobs = BlobStore(settings.state_dir / "blobs")
    await asyncio.to_thread(blobs.prepare)
    admin = await asyncio.to_thread(auth.admin_token, settings)
    if settings.admin_token is None:
        log.info("admin token in %s", settings.admin_token_path)
    feed = ChangeFeed()
    async with open_sqlite(settings.database_path, settings.database, feed.publish) as store:
        app[keys.SERVICES] = services.build(settings, store, feed, blobs, admin, app[keys.METRICS])
        yield
        feed.close()


async def _background(app: web.Application) -> AsyncIterator[None]:
    presence = app[keys.SERVICES].presence
    task = asyncio.create_task(
        tasks.guarded("presence watcher", presence.watch), name="presence watcher"
    )
    yield
    await tasks.cancel_and_wait(task)


async def _end_streams(app: web.Application) -> None:
    app[keys.SERVICES].feed.close()


def _version() -> str:
    try:
        return metadata.version("pilothouse")
    except metadata.PackageNotFoundError:
        return "0.0.0"


VERSION = _version()  # read once, at import: it stats files
