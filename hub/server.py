"""Serving the hub: embedded (``serve_hub``, ``Hub``) or as the ``pilothouse hub run`` process.

``async with serve_hub(settings) as url:`` starts the API on the configured
address (port 0 picks a free one; ``url`` names the bound port) and stops it
cleanly when the block ends. :class:`Hub` wraps that for long-running use:
``await Hub(settings).serve()`` runs until :meth:`Hub.request_stop` or until
its task is cancelled. Neither installs signal handlers nor cancels tasks it
did not create; only the CLI handles SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from pilothouse.hub.api.app import create_app
from pilothouse.hub.clock import Clock
from pilothouse.hub.errors import HubError
from pilothouse.hub.settings import HubSettings

log = logging.getLogger("pilothouse.hub")

SHUTDOWN_TIMEOUT_S = 10.0


@contextlib.asynccontextmanager
async def serve_hub(settings: HubSettings, *, clock: Clock | None = None) -> AsyncIterator[str]:
    """Serve the hub for the duration of the block; yield its base URL.

    ``clock`` replaces the wall clock of background work (tests: a ``ManualClock``).
    """
    runner = web.AppRunner(
        create_app(settings, clock=clock),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        # closes idle connections, and connections whose request headers never complete
        keepalive_timeout=settings.http.keepalive_timeout_s,
        logger=ClientFaultsAtInfo(logging.getLogger("aiohttp.server")),
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.listen.host, settings.listen.port)
        await site.start()
        url = base_url(runner.addresses[0])
        log.info("hub listening on %s (state in %s)", url, settings.state_dir)
        yield url
    finally:
        await runner.cleanup()
        log.info("hub stopped")


class ClientFaultsAtInfo(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger, with a client's malformed request at INFO, not ERROR.

    aiohttp answers such a request (a NUL byte in a header, a broken request
    line) with 400 itself and logs it with a traceback at ERROR: a false alarm
    for the hub's operators, since the fault is the client's.
    """

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        """Log at INFO, without the traceback, when the exception is the client's fault."""
        exc = kwargs.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            kwargs.pop("exc_info")
            self.info(
                f"{msg}: %s", *args, exc.message.splitlines()[0] if exc.message else exc, **kwargs
            )
            return
        super().exception(msg, *args, **kwargs)


def base_url(address: tuple[str, int] | tuple[str, int, int, int]) -> str:
    """``http://host:port`` of a bound socket address (IPv6 in brackets)."""
    host, port = address[0], address[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Hub:
    """A hub that serves until asked to stop."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.url: str | None = None
        self._stop = asyncio.Event()
        self._settled = asyncio.Event()
        self._failure: BaseException | None = None

    async def serve(self) -> None:
        """Serve until :meth:`request_stop` (or cancellation); clean up either way."""
        try:
            async with serve_hub(self.settings) as url:
                self.url = url
                self._settled.set()
                await self._stop.wait()
        except BaseException as exc:
            self._failure = exc
            raise
        finally:
            self._settled.set()

    async def wait_ready(self) -> str:
        """Wait until the hub listens and return its URL; raise if it could not start."""
        await self._settled.wait()
        if self.url is None:
            raise HubError("the hub did not start") from self._failure
        return self.url

    def request_stop(self) -> None:
        """Ask :meth:`serve` to stop and return."""
        self._stop.set()
