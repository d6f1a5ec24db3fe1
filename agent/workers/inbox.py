"""A worker's inbox: a minimal single-consumer queue.

``asyncio.Queue`` allocates three deques and an ``Event`` per instance (about
3 KB); with one inbox per deployment and ten thousand deployments that is a
third of the agent's memory. A worker's inbox has one consumer and is drained
whole, so a list and at most one waiting future do the same job in a tenth of
the space.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """FIFO with ``put_nowait`` for any number of producers and ``wait`` for one consumer."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: T) -> None:
        """Append ``item`` and wake the consumer if it waits."""
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109 - see docstring
        """Wait up to ``timeout`` seconds for an item; tell whether one is there.

        Timing out resolves the waiter from a timer instead of cancelling the
        task, which matters when ten thousand idle workers retire at once.
        """
        if self._items:
            return True
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        return bool(self._items)

    def get_nowait(self) -> T:
        """Take the oldest item; ``IndexError`` if there is none."""
        return self._items.pop(0)

    def empty(self) -> bool:
        """Tell whether nothing is waiting."""
        return not self._items

    def qsize(self) -> int:
        """How many items are waiting."""
        return len(self._items)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
