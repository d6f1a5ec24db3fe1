"""``/api/v1/model-packages``: upload, list, read, download archives."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import BinaryIO

from aiohttp import web

from pilothouse.hub.api import bodies
from pilothouse.hub.api.keys import SETTINGS
from pilothouse.hub.api.schemas import ListQuery, ModelPackage
from pilothouse.hub.errors import PayloadTooLarge, UnsupportedMediaType

ARCHIVE_TYPES = frozenset({"application/gzip", "application/x-gzip", "application/octet-stream"})
_CHUNK = 256 * 1024


async def upload(request: web.Request) -> web.Response:
    """Store a .tar.gz model package (raw body); 200 if the same bytes are stored already."""
    if request.content_type not in ARCHIVE_TYPES:
        raise UnsupportedMediaType(
            f"expected Content-Type application/gzip, got {request.content_type!r}"
        )
    limit = request.app[SETTINGS].limits.max_package_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the archive is larger than {limit} bytes")
    package, new = await bodies.services(request).packages.upload(bodies.chunks(request, _CHUNK))
    return bodies.respond(package, 201 if new else 200)


async def page(request: web.Request) -> web.Response:
    """List model packages, newest first."""
    query = bodies.query(request, ListQuery)
    return bodies.respond(await bodies.services(request).packages.page(query.limit, query.cursor))


async def get(request: web.Request) -> web.Response:
    """Read one model package."""
    return bodies.respond(await bodies.services(request).packages.get(request.match_info["id"]))


async def archive(request: web.Request) -> web.StreamResponse:
    """Stream the archive; ``ETag`` is its sha256 and ``If-None-Match`` may answer 304."""
    who = bodies.principal(request)
    package_id = request.match_info["id"]
    package, path = await bodies.services(request).packages.archive(package_id, who)
    etag = f'"{package.sha256}"'
    wanted = request.if_none_match or ()
    if any(tag.value in (package.sha256, "*") for tag in wanted):
        return web.Response(status=304, headers={"ETag": etag})
    response = web.StreamResponse(
        headers={
            "ETag": etag,
            "Content-Type": "application/gzip",
            "Content-Disposition": f'attachment; filename="{_file_name(package)}"',
        }
    )
    response.content_length = package.size
    await response.prepare(request)
    await _send(path, response)
    await response.write_eof()
    return response


async def _send(path: Path, response: web.StreamResponse) -> None:
    source: BinaryIO = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(source.read, _CHUNK):
            await response.write(chunk)
    finally:
        await asyncio.to_thread(source.close)


def _file_name(package: ModelPackage) -> str:
    return f"{package.name}-{package.version}.tar.gz"
