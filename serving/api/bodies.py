"""Reading request bodies within ``read_timeout_s``.

aiohttp closes a connection whose request *headers* do not arrive within the
keep-alive timeout, but a handler waits for the *body* as long as the client
keeps the connection open: a client that sends ``Content-Length: 1000`` and
ten bytes would hold a connection, and a handler, forever. Every handler
reads its body through :func:`read`; past the deadline the answer is 408 and
:mod:`pilothouse.serving.api.app` closes the connection once it is written.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from pilothouse.serving.api.keys import SETTINGS
from pilothouse.serving.errors import RequestTimeoutError


async def read(request: web.Request) -> bytes:
    """The whole body, or :class:`RequestTimeoutError` if it does not arrive in time."""
    if request.content.is_eof():  # all of it came with the headers: no timer to arm
        return await request.read()
    deadline = request.config_dict[SETTINGS].read_timeout_s
    try:
        async with asyncio.timeout(deadline):
            return await request.read()
    except TimeoutError:
        raise RequestTimeoutError(
            f"the request body did not arrive within {deadline:g} s (read_timeout_s)"
        ) from None
