"""Opaque page cursors: the last item's (time, id), so a page never skips or repeats.

Lists are newest first by (time, id); the next page is everything strictly
before the last item shown. That stays right while new items arrive (they sort
before the first page, never into a later one). The cursor is URL-safe base64
of ``<µs>:<id>``: opaque to clients, cheap to check. An empty cursor is the first
page, as if none were given.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

from hub.api.schemas import INT64_MAX, INT64_MIN
from hub.errors import InvalidInput
from hub.store.records import Cursor

T = TypeVar("T")


def encode(cursor: Cursor) -> str:
    """The cursor as an opaque string."""
    raw = f"{cursor.time_us}:{cursor.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(text: str | None) -> Cursor | None:
    """The cursor a client passed back, or ``InvalidInput`` naming ``cursor``."""
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        time_part, ident = raw.split(":", 1)
        time_us = int(time_part)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        time_us = None
    if time_us is None or not INT64_MIN <= time_us <= INT64_MAX:
        raise InvalidInput.field("cursor", "not a cursor this hub issued", text)
    return Cursor(time_us, ident)


def split(items: Sequence[T], limit: int, key: Callable[[T], Cursor]) -> tuple[list[T], str | None]:
    """A page of ``limit`` items out of ``limit + 1`` fetched, and the next cursor if any."""
    page = list(items[:limit])
    more = len(items) > limit
    return page, encode(key(page[-1])) if more and page else None
