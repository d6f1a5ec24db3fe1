"""Real HTTP receivers on 127.0.0.1 standing in for Slack and for webhook endpoints.

A :class:`Receiver` records every request (raw body and headers) and answers
from a script of statuses (then 200 ``ok``, as Slack does). :func:`down_url`
is a URL where nothing listens: connections are refused. A hub sends to these
(on 127.0.0.1) only with :data:`LOCAL_TARGETS` in its notification settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

LOCAL_TARGETS = {"allow_private_targets": True}
"""Hub notification settings that let it send to receivers on 127.0.0.1."""


@dataclass(frozen=True)
class Request:
    """One request a receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """An HTTP endpoint that records what it gets."""

    url: str = ""
    answers: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    requests: list[Request] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(Request(request.path, dict(request.headers), body))
        self._arrived.set()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status, text="ok" if status == 200 else "no_service")

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Request]:
        """The first ``count`` requests, once they have arrived."""
        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.requests[:count]

    async def nothing_more(self, count: int, settle_s: float = 0.3) -> None:
        """Assert that no request beyond ``count`` arrives within ``settle_s``."""
        await asyncio.sleep(settle_s)
        assert len(self.requests) == count, [r.json() for r in self.requests[count:]]


@contextlib.asynccontextmanager
async def receiving(answers: Iterable[int] = (), delay_s: float = 0.0) -> AsyncIterator[Receiver]:
    """A receiver listening on 127.0.0.1 for the duration of the block."""
    receiver = Receiver(answers=list(answers), delay_s=delay_s)
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    receiver.url = f"http://{host}:{port}/services/T000/B000/s3cr3tPATHtoken"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def down_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook/s3cr3tPATHtoken"
