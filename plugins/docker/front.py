"""The front: the stable entry of a dedicated deployment, so its server can be replaced.

In dedicated mode each deployment has its own server container, and a
replacement starts a *new* container beside the old one (other model, other
limits, other labels). Clients must not see that: they call the deployment's
front, a small reverse proxy in its own container whose published port never
changes, and the front sends each request to the server it currently points
to. The agent switches it only once the new server answers a probe, waits
until no request the front sent to the old server is still in flight, and
only then stops the old server — so no request fails. As a second line, a
request whose connection breaks before any answer (refused, reset, closed:
a server that went away) is sent once more, to the current server:
predictions are pure.

The backend is a file in the front's volume (``backend``: one URL and a
newline), put there by the agent with the engine's archive API, read when it
changes; ``GET /_pilothouse/front`` tells which backend the front uses and how
many requests are in flight to each server, so the agent knows when the switch
took effect and when the old server has nothing left to answer. No token is
needed: nothing but the engine's archive API can change it.

Run as ``python -m pilothouse.plugins.docker.front --port 8702 --backend-file F``
(the plugin starts it in the project's own image). Its only imports are
aiohttp and the standard library, so it starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

log = logging.getLogger("pilothouse.front")

STATUS_PATH = "/_pilothouse/front"
POLL_S = 0.1
"""How often the backend file is read (a few dozen bytes): the delay of a switch."""
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "host", "content-length",
})  # fmt: skip
SENT_ONCE_MORE = aiohttp.ClientConnectionError
"""A connection that failed before any answer (refused, reset, closed): the request may be
sent again (a failure while the answer is read is a ClientPayloadError, not retried)."""


class Backend:
    """The URL requests go to, followed from the backend file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url: str | None = None
        self.in_flight: collections.Counter[str] = collections.Counter()
        """Requests sent to each server and not answered yet."""

    def refresh(self) -> None:
        """Read the file again; a partly written one is ignored until it is complete.

        The file is read, not stat'ed: the archive API writes it with the tar's
        mtime, and two URLs have the same length, so only its content tells.
        """
        try:
            text = self.path.read_text(errors="replace")
        except FileNotFoundError:
            return
        if not text.endswith("\n") or not text.startswith("http"):
            return  # the engine is still writing it
        url = text.strip().rstrip("/")
        if url != self.url:
            log.info("backend: %s (was %s)", url, self.url)
            self.url = url

    async def follow(self) -> None:
        """Refresh every :data:`POLL_S` until cancelled; a read that fails is tried again."""
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except OSError as exc:  # never leave the front stuck on an old backend
                log.warning("cannot read %s: %s", self.path, exc)
            await asyncio.sleep(POLL_S)


def create_app(backend: Backend) -> web.Application:
    """The front's application: its status, and every other path proxied."""
    app = web.Application(client_max_size=1024**3)
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=300)
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
            app[session_key] = session
            follower = asyncio.create_task(backend.follow(), name="front: follow the backend")
            try:
                yield
            finally:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower

    async def status(request: web.Request) -> web.Response:
        in_flight = {url: n for url, n in backend.in_flight.items() if n}
        doc = {"backend": backend.url, "in_flight": in_flight}
        return web.json_response(doc, status=503 if backend.url is None else 200)

    async def proxy(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        session = request.app[session_key]
        for attempt in (0, 1):
            url = backend.url
            if url is None:
                return web.json_response({"error": "this deployment has no server yet"}, status=503)
            backend.in_flight[url] += 1
            try:
                async with session.request(
                    request.method, url + str(request.rel_url), data=body, headers=headers,
                    allow_redirects=False,
                ) as resp:  # fmt: skip
                    payload = await resp.read()
                    out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP}
                    return web.Response(status=resp.status, body=payload, headers=out)
            except SENT_ONCE_MORE as exc:
                if attempt == 0:
                    continue
                return _bad_gateway(url, exc)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return _bad_gateway(url, exc)
            finally:
                backend.in_flight[url] -= 1
        raise AssertionError("unreachable")

    app.cleanup_ctx.append(resources)
    app.router.add_get(STATUS_PATH, status)
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app


def _bad_gateway(url: str, exc: BaseException) -> web.Response:
    detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
    log.warning("server %s did not answer: %s", url, detail)
    return web.json_response({"error": f"the deployment's server did not answer: {detail}"},
                             status=502)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m pilothouse.plugins.docker.front")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8702)
    parser.add_argument("--backend-file", type=Path, required=True)
    parser.add_argument("--shutdown-grace-s", type=float, default=10.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    backend = Backend(args.backend_file)
    backend.refresh()
    web.run_app(create_app(backend), host=args.host, port=args.port, print=None,
                access_log=None, shutdown_timeout=args.shutdown_grace_s)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
