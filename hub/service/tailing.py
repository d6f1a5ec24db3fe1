"""The live event stream behind the web UI: a first page, then each new matching event.

A browser opens ``GET /events/stream`` with the event list's filters. The
stream first sends the newest ``backlog`` matching events as one page (the
same page ``GET /events`` would answer, with its cursor for older ones) and
the ingest position that page was read at — both from one database snapshot,
so nothing stored in between is missed or sent twice — then follows: each
time the store commits events it wakes the streams (through a
:class:`~pilothouse.hub.service.feed.ChangeFeed` keyed :data:`ALL`), and each
reads what was stored after its position. Resuming with a position sends what
was stored since, without a page. Waiting creates no task.
"""

from __future__ import annotations

from dataclasses import dataclass

from pilothouse.hub import clock
from pilothouse.hub.api.schemas import EventFilters, EventOut, Page
from pilothouse.hub.service import cursors
from pilothouse.hub.service.events import filter_of
from pilothouse.hub.service.feed import ChangeFeed
from pilothouse.hub.store.interface import Store
from pilothouse.hub.store.records import Cursor, TailChunk

ALL = "events"
"""The feed key the store's event commits are published under."""
SCAN = 500
"""Rows looked at per read while following: bounds one read after a burst."""


@dataclass(frozen=True, slots=True)
class Start:
    """Where a stream starts: its first page (None when resuming) and position."""

    page: Page[EventOut] | None
    position: int


class EventTail:
    """First pages and follow-up reads of live event streams."""

    def __init__(self, store: Store, feed: ChangeFeed) -> None:
        self._store = store
        self.feed = feed

    def version(self) -> int:
        """The feed's version: read it before a read, wait past it after."""
        return self.feed.version(ALL)

    async def start(self, filters: EventFilters, backlog: int, resume: int | None) -> Start:
        """The first page and its position, or, resuming, just the position to resume after."""
        if resume is not None and resume >= 0:
            return Start(None, resume)
        first = filter_of(filters, backlog + 1 if backlog else 0, None)
        found, position = await self._store.event_snapshot(first)
        items, after = cursors.split(found, backlog, _key) if backlog else ([], None)
        return Start(Page[EventOut](items=items, next_cursor=after), position)

    async def after(self, filters: EventFilters, position: int) -> TailChunk:
        """Matching events stored after ``position`` (a bounded read; see ``more``)."""
        return await self._store.tail_events(position, filter_of(filters, SCAN, None), SCAN)

    async def wait(self, seen: int, max_wait_s: float) -> bool:
        """Wait for events stored after version ``seen``; False on timeout."""
        return await self.feed.wait(ALL, seen, max_wait_s)


def _key(event: EventOut) -> Cursor:
    return Cursor(clock.to_us(event.time), event.id)
