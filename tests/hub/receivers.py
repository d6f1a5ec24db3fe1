"""Real HTTP receivers on 127.0.0.1 standing in for Slack and for webhook endpoints.

A :class:`Receiver` records every request (raw body and headers) and answers
from a script of statuses or :class:`Answer` objects (then 200 ``ok``, as Slack
does). :func:`down_url` is a URL where nothing listens: connections are refused.
A hub sends to these (on 127.0.0.1) only with :data:`LOCAL_TARGETS` in its
notification settings.
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

from tests.hub.quiet import WatchedClock

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


@dataclass(frozen=True)
class Answer:
    """A scripted answer: its status, extra headers, and how long it takes to come."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Receiver:
    """An HTTP endpoint that records what it gets."""

    url: str = ""
    answers: list[int | Answer] = field(default_factory=list)
    delay_s: float = 0.0
    requests: list[Request] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(Request(request.path, dict(request.headers), body))
        self._arrived.set()
        scripted = self.answers.pop(0) if self.answers else 200
        answer = scripted if isinstance(scripted, Answer) else Answer(scripted)
        if self.delay_s or answer.delay_s:
            await asyncio.sleep(self.delay_s + answer.delay_s)
        text = "ok" if answer.status == 200 else "no_service"
        return web.Response(status=answer.status, text=text, headers=answer.headers)

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Request]:
        """The first ``count`` requests, once they have arrived."""
        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.requests[:count]

    async def nothing_more(self, count: int, clock: WatchedClock) -> None:
        """Assert that ``count`` requests came and no other is on its way.

        Proved, not waited out: once the hub's notification dispatcher is idle
        (see :mod:`tests.hub.quiet`), every message due so far has arrived.
        """
        await clock.until_idle()
        assert len(self.requests) == count, [r.json() for r in self.requests[count:]]


@contextlib.asynccontextmanager
async def receiving(
    answers: Iterable[int | Answer] = (), delay_s: float = 0.0
) -> AsyncIterator[Receiver]:
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
