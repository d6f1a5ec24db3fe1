"""Serving the web UI: ``/`` is the page, ``/ui/<file>`` its scripts and styles.

Every file of ``static/`` is read once, in a thread, when the application
starts, and kept in memory (a few tens of kilobytes): a request never touches
the disk and no path a client sends is ever joined to a directory, so nothing
outside the UI can be served. Each answer carries a strong ``ETag`` (a
revalidation answers 304) and ``Cache-Control: no-cache``, so a browser
revalidates and picks up a new hub's UI at once. The page is sent with a
Content Security Policy that allows only the hub's own scripts, styles and API
— no inline script, no other origin — and may not be framed.

The routes are public, like ``/healthz``: the page holds no data; it asks for
a token and every API call it makes carries it.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static"
INDEX = "index.html"
PREFIX = "/ui/"
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of the UI, ready to send."""

    body: bytes
    content_type: str
    etag: str


ASSETS: web.AppKey[dict[str, Asset]] = web.AppKey("ui assets", dict)


def install(app: web.Application) -> None:
    """Add the UI's routes to the hub's application and load its files at startup."""
    app[ASSETS] = {}
    app.router.add_get("/", index)
    app.router.add_get(PREFIX + "{name:.+}", asset)
    app.cleanup_ctx.append(_loaded)


async def index(request: web.Request) -> web.Response:
    """The UI's page."""
    return _send(request, request.app[ASSETS][INDEX], page=True)


async def asset(request: web.Request) -> web.Response:
    """One script, style or image of the UI; 404 for anything else."""
    found = request.app[ASSETS].get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound(reason="no such file in the UI")
    return _send(request, found, page=False)


def load(root: Path = STATIC) -> dict[str, Asset]:
    """Every file under ``root`` by its path relative to it (``js/api.js``). Blocking."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            body = path.read_bytes()
            name = path.relative_to(root).as_posix()
            found[name] = Asset(
                body, _type(path), '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            )
    if INDEX not in found:
        raise FileNotFoundError(f"the web UI is incomplete: no {INDEX} in {root}")
    return found


async def _loaded(app: web.Application) -> AsyncIterator[None]:
    app[ASSETS].update(await asyncio.to_thread(load))
    yield


def _send(request: web.Request, found: Asset, *, page: bool) -> web.Response:
    headers = {
        "ETag": found.etag,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if page:
        headers["Content-Security-Policy"] = POLICY
        headers["Referrer-Policy"] = "no-referrer"
    if any(tag.value == found.etag.strip('"') for tag in request.if_none_match or ()):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = found.content_type
    return web.Response(body=found.body, headers=headers)


def _type(path: Path) -> str:
    known = _TYPES.get(path.suffix)
    if known is not None:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"
