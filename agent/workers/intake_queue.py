"""The queue from the intake to the dispatcher, which knows when all it got was routed.

``Agent.wait_settled`` must not return between the moment a new desired state
is put and the moment the dispatcher routes it; counting items from ``put``
to ``done`` closes that gap without polling.
"""

from __future__ import annotations

import asyncio

from pilothouse.foundation.domain.changes import IntakeItem


class IntakeQueue:
    """FIFO of snapshots and changes, with a 'everything routed' event."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[IntakeItem] = asyncio.Queue()
        self._unrouted = 0
        self._routed = asyncio.Event()
        self._routed.set()

    def put(self, item: IntakeItem) -> None:
        """Queue ``item`` for the dispatcher."""
        self._unrouted += 1
        self._routed.clear()
        self._queue.put_nowait(item)

    async def get(self) -> IntakeItem:
        """Take the next item; call :meth:`done` once it is routed."""
        return await self._queue.get()

    def done(self) -> None:
        """Mark one item taken with :meth:`get` as routed."""
        self._unrouted -= 1
        if self._unrouted == 0:
            self._routed.set()

    async def wait_routed(self) -> None:
        """Wait until every item put so far has been routed."""
        await self._routed.wait()

    def qsize(self) -> int:
        """Items not yet taken."""
        return self._queue.qsize()
