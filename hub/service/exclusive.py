"""Background work that runs on one replica only: a task body gated by the lease.

:func:`gated` wraps the body of an eternal task (the presence watcher, the
notification dispatcher, the retention purger). The wrapper waits until this
replica holds the lease, runs the body, and cancels it the moment the lease is
lost — another replica may hold it within seconds, and two dispatchers must not
send side by side for longer than it takes to notice. It then waits for the
lease again. A body that fails is the supervisor's business: the failure
propagates and the supervisor restarts the wrapper, which waits for the lease
first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pilothouse.hub.store.leases import Lease

log = logging.getLogger("pilothouse.hub.lease")

Body = Callable[[], Awaitable[None]]


def gated(lease: Lease, name: str, body: Body) -> Body:
    """``body`` run only while this replica holds ``lease``; cancelled when it is lost."""

    async def run() -> None:
        while True:
            await lease.acquired()
            work = asyncio.create_task(_call(body), name=name)
            lost = asyncio.create_task(lease.lost(), name=f"{name}: lease watch")
            try:
                await asyncio.wait([work, lost], return_when=asyncio.FIRST_COMPLETED)
            finally:
                if lost.done() and not work.done():
                    log.warning("%s stops: this replica lost the lease", name)
                work.cancel()
                lost.cancel()
                await asyncio.wait([work, lost])  # both end before this does, whatever ends it
            if not work.cancelled():
                work.result()  # ended or failed by itself: the supervisor decides

    return run


async def _call(body: Body) -> None:
    await body()
