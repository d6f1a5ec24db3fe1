"""The hub's aiohttp application, built the way aiohttp documents it.

``create_app(settings)`` returns a ``web.Application`` whose state lives under
typed ``web.AppKey``s. Resources are ``cleanup_ctx`` generators, opened in
order at startup and closed in reverse at cleanup:

1. the store (SQLite threads or a PostgreSQL pool, migrations), blob directory, admin token, the
   secret key that seals channel secrets, the HTTP client session that sends
   notifications, and the services over them;
2. the guarded background tasks: the backend's own, on every replica (on
   PostgreSQL: the live channel between replicas and the lease keeper), and the
   retraining trigger sender, and the presence watcher, notification dispatcher,
   retention purger and retraining scheduler, which run
   only while this replica holds the lease (always, on SQLite) — cancelled and
   awaited (an in-flight notification is
   cancelled with the dispatcher; its lease makes the next start retry it).

``clock`` is the clock the background tasks wait on (a
:class:`~pilothouse.hub.clock.ManualClock` in tests).

``on_shutdown`` closes the change feeds first, so every watch stream and
live event stream ends before aiohttp waits for handlers and before the store
closes. The web UI (:mod:`pilothouse.hub.ui`) is served at ``/``. Routes come
from :data:`pilothouse.hub.api.routes.ROUTES`, which also yields the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from importlib import metadata

import orjson
from aiohttp import web

from pilothouse.foundation.aio.supervisor import RestartPolicy, Supervisor
from pilothouse.hub import services
from pilothouse.hub.api import keys, middleware, openapi, routes
from pilothouse.hub.clock import Clock, SystemClock
from pilothouse.hub.notifications import sealing
from pilothouse.hub.notifications.sealing import Sealer
from pilothouse.hub.service import auth, exclusive, tailing, targets
from pilothouse.hub.service.blobs import BlobStore
from pilothouse.hub.service.feed import ChangeFeed
from pilothouse.hub.settings import HubSettings
from pilothouse.hub.store.backends import Callbacks, open_backend
from pilothouse.hub.telemetry import HubMetrics
from pilothouse.hub.ui import assets as ui

log = logging.getLogger("pilothouse.hub")


def create_app(settings: HubSettings, *, clock: Clock | None = None) -> web.Application:
    """The hub as an aiohttp application (not yet started)."""
    app = web.Application(
        client_max_size=settings.limits.max_request_bytes,
        middlewares=[middleware.metrics, middleware.errors, middleware.auth],
    )
    app[keys.SETTINGS] = settings
    app[keys.CLOCK] = clock or SystemClock()
    app[keys.METRICS] = HubMetrics()
    access = {}
    for route in routes.ROUTES:
        access[app.router.add_route(route.method, route.path, route.handler)] = route.access
    app[keys.ACCESS] = access
    app[keys.OPENAPI] = orjson.dumps(openapi.document(routes.ROUTES, version=VERSION))
    ui.install(app)
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
    sealer = Sealer(await asyncio.to_thread(sealing.secret_key, settings))
    feed = ChangeFeed()
    event_feed = ChangeFeed()  # live event streams (the UI's activity lists)
    events_stored = asyncio.Event()

    def stored() -> None:
        events_stored.set()
        event_feed.publish(tailing.ALL)

    def woken() -> None:  # after a gap in the live channel: every stream looks again
        feed.wake_all()
        stored()

    callbacks = Callbacks(feed.publish, stored, woken, app[keys.CLOCK].now_us)
    async with (
        open_backend(settings, callbacks) as backend,
        targets.session(
            settings.notifications.allow_private_targets, settings.notifications.proxy_url
        ) as http,
    ):
        outside = services.Outside(
            http, app[keys.CLOCK], sealer, admin, events_stored, f"pilothouse-hub/{VERSION}"
        )
        app[keys.BACKEND] = backend
        app[keys.SERVICES] = services.build(
            settings, backend.store, feed, blobs, outside, app[keys.METRICS], event_feed
        )
        yield
        feed.close()
        event_feed.close()


async def _background(app: web.Application) -> AsyncIterator[None]:
    hub = app[keys.SERVICES]
    eternal = {
        "presence watcher": hub.presence.watch,
        "notification dispatcher": hub.dispatcher.run,
        "retention purger": hub.retention.watch,
        "retraining scheduler": hub.retraining.schedule,
    }
    # The hub never gives up on these: a failure is logged and the task restarted.
    supervisor = Supervisor(RestartPolicy(0.5, 30.0, crash_loop_failures=None))
    backend = app[keys.BACKEND]
    for name, body in backend.tasks.items():  # on every replica: the live channel, the lease
        await supervisor.start_eternal(name, body)
    # on every replica: each sends the retraining triggers it claimed itself
    await supervisor.start_eternal("retraining trigger", hub.retraining.run)
    for name, body in eternal.items():  # on one replica at a time: the lease holder
        await supervisor.start_eternal(name, exclusive.gated(backend.lease, name, body))
    yield
    await supervisor.stop_all()


async def _end_streams(app: web.Application) -> None:
    app[keys.SERVICES].feed.close()
    app[keys.SERVICES].tail.feed.close()


def _version() -> str:
    try:
        return metadata.version("pilothouse")
    except metadata.PackageNotFoundError:
        return "0.0.0"


VERSION = _version()  # read once, at import: it stats files
