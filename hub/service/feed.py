"""Waking watch streams when a PE's desired state changes, without polling.

The store calls :meth:`ChangeFeed.publish` with a PE's id after every committed
change of it. Each PE has a version counter and, while someone waits, one
``asyncio.Event``: publishing bumps the counter and sets the event; a waiter
that remembers the version it last saw never misses a change that landed
between its read and its wait. Waiting creates no task. :meth:`close` (on hub
shutdown) wakes every waiter for good, so streams end cleanly.

With several hub replicas over one PostgreSQL the backend feeds ``publish``
from ``LISTEN`` (changes made through other replicas), and calls
:meth:`wake_all` after a gap in what it heard: every stream replays from its
revision, so nothing committed meanwhile is missed.
"""

from __future__ import annotations

import asyncio


class FeedClosed(Exception):
    """The hub is shutting down; streams should end."""


class ChangeFeed:
    """Per-PE change notifications for watch streams."""

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._closed = False

    def version(self, pe_id: str) -> int:
        """How many changes of ``pe_id`` were published so far (by this process)."""
        return self._versions.get(pe_id, 0)

    def publish(self, pe_id: str) -> None:
        """A change of ``pe_id`` was committed: wake its waiters."""
        self._versions[pe_id] = self.version(pe_id) + 1
        event = self._events.pop(pe_id, None)
        if event is not None:
            event.set()

    async def wait(self, pe_id: str, seen: int, max_wait_s: float) -> bool:
        """Wait for a version after ``seen``; False on timeout, ``FeedClosed`` on shutdown."""
        if self._closed:
            raise FeedClosed
        if self.version(pe_id) > seen:
            return True
        event = self._events.setdefault(pe_id, asyncio.Event())
        try:
            async with asyncio.timeout(max_wait_s):
                await event.wait()
        except TimeoutError:
            return False
        if self._closed:
            raise FeedClosed
        return True

    def wake_all(self) -> None:
        """Wake every waiter, as if each PE changed (after a gap in the live channel)."""
        for pe_id in list(self._events):
            self.publish(pe_id)

    def close(self) -> None:
        """Wake every waiter and refuse new waits: the hub is stopping."""
        self._closed = True
        for event in self._events.values():
            event.set()
        self._events.clear()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed
