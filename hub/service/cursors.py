"""Page cursors: the last item's (time, id), so a page never skips or repeats.

Lists are newest first by (time, id); the next page is everything strictly
before the last item shown. That stays right while new items arrive (they sort
before the first page, never into a later one). A cursor reads
``<µs>.<id>`` — meant to be passed back, not built — and its pattern,
:data:`~pilothouse.hub.api.schemas.CURSOR`, is in the OpenAPI document: every string of
that pattern is a position (a made-up one simply pages from there), so the
document and the server agree on what is valid. An empty cursor is the first
page, as if none were given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from pilothouse.hub.api.schemas import CURSOR
from pilothouse.hub.errors import InvalidInput
from pilothouse.hub.store.records import Cursor

T = TypeVar("T")

_CURSOR = re.compile(CURSOR)


def encode(cursor: Cursor) -> str:
    """The cursor as a string."""
    return f"{cursor.time_us}.{cursor.id}"


def decode(text: str | None) -> Cursor | None:
    """The cursor a client passed back, or ``InvalidInput`` naming ``cursor``."""
    if not text:
        return None
    if not _CURSOR.match(text):
        raise InvalidInput.field("cursor", "not a cursor this hub issued", text)
    time_part, ident = text.split(".", 1)
    return Cursor(int(time_part), ident)


def split(items: Sequence[T], limit: int, key: Callable[[T], Cursor]) -> tuple[list[T], str | None]:
    """A page of ``limit`` items out of ``limit + 1`` fetched, and the next cursor if any."""
    page = list(items[:limit])
    more = len(items) > limit
    return page, encode(key(page[-1])) if more and page else None
