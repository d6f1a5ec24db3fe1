"""Reading requests into schema models and writing models as JSON responses.

Parsing is strict and leaves the translation of failures to the error
middleware: pydantic's ``ValidationError`` there becomes 400 (not JSON) or
422 (naming each field). Strict means what the OpenAPI document says: a JSON
body must be sent as ``application/json`` (415 otherwise), ``false`` is no
number and a number is no time. An empty body reads as ``{}``, so a body whose
fields all have defaults may be left out (the document marks such a body as
optional) and a missing required field is named. Query strings are text, so
they are converted (``limit=5``); what JSON Schema would refuse there (a number
for a time) is refused by the models themselves.

A body that stops arriving is not waited for forever (408): a JSON body must
arrive within ``http.read_timeout_s``, and an upload may not pause for longer
between two chunks, so a client that sends half a request cannot hold a
handler.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

import pydantic_core
from aiohttp import web
from pydantic import BaseModel

from pilothouse.hub.api import keys
from pilothouse.hub.errors import PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from pilothouse.hub.service.auth import Principal
from pilothouse.hub.services import Services

M = TypeVar("M", bound=BaseModel)

JSON = "application/json"


async def parse(request: web.Request, model: type[M]) -> M:
    """The request body as ``model`` (``client_max_size`` bounds what is read)."""
    raw = await _read(request)
    if raw and not is_json(request.content_type):
        raise UnsupportedMediaType(
            f"expected Content-Type application/json, got {request.content_type!r}"
        )
    return model.model_validate_json(raw or b"{}", strict=True)


async def parse_large(request: web.Request, model: type[M], limit: int) -> M:
    """A large JSON body as ``model``: at most ``limit`` bytes read (413), validated off the loop.

    Validating megabytes of JSON takes long enough to hold up every other
    request, so it runs on a worker thread.
    """
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body is over {limit} bytes ({request.content_length})")
    if not is_json(request.content_type):
        raise UnsupportedMediaType(
            f"expected Content-Type application/json, got {request.content_type!r}"
        )
    raw = bytearray()
    async for chunk in chunks(request, 1 << 16):
        raw += chunk
        if len(raw) > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes")
    return await asyncio.to_thread(model.model_validate_json, bytes(raw) or b"{}", strict=True)


def is_json(content_type: str) -> bool:
    """Whether a media type is JSON (``application/json`` or a ``+json`` type)."""
    return content_type == JSON or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


def query(request: web.Request, model: type[M]) -> M:
    """The query string as ``model``."""
    return model.model_validate_strings(dict(request.query))


async def chunks(request: web.Request, size: int) -> AsyncIterator[bytes]:
    """The raw body in chunks of up to ``size`` bytes, each awaited at most the read timeout."""
    timeout = request.app[keys.SETTINGS].http.read_timeout_s
    stream = request.content
    while True:
        try:
            async with asyncio.timeout(timeout):
                chunk = await stream.read(size)
        except TimeoutError:
            raise RequestTimeout(
                f"the upload stopped arriving (no bytes for {timeout:g}s)"
            ) from None
        if not chunk:
            return
        yield chunk


async def _read(request: web.Request) -> bytes:
    timeout = request.app[keys.SETTINGS].http.read_timeout_s
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        raise RequestTimeout(f"the request body did not arrive within {timeout:g}s") from None


def respond(model: BaseModel, status: int = 200) -> web.Response:
    """``model`` as a JSON response."""
    return web.Response(body=pydantic_core.to_json(model), status=status, content_type=JSON)


def services(request: web.Request) -> Services:
    """The hub's services."""
    return request.app[keys.SERVICES]


def principal(request: web.Request) -> Principal:
    """Who is asking (set by the auth middleware on every non-public route)."""
    return request[keys.PRINCIPAL]
