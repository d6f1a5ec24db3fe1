"""Shared bits of the SQLite backend: pages, ``IN`` lists, taken-name translation.

JSON columns are read and written as on PostgreSQL: :func:`~pilothouse.hub.store.mapping.dumps`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

from pilothouse.hub.errors import Conflict
from pilothouse.hub.store.records import PageQuery


def page_clause(page: PageQuery, time_column: str, id_column: str = "id") -> tuple[str, list[Any]]:
    """``AND (time, id) < cursor`` when there is one, and the order and limit of a page."""
    where, params = "", []
    if page.after is not None:
        where = f" AND ({time_column}, {id_column}) < (?, ?)"
        params = [page.after.time_us, page.after.id]
    order = f" ORDER BY {time_column} DESC, {id_column} DESC LIMIT ?"
    return where + order, [*params, page.limit]


def placeholders(count: int) -> str:
    """``?, ?, …`` for an ``IN`` list."""
    return ", ".join("?" * count)


@contextlib.contextmanager
def taken(message: str) -> Iterator[None]:
    """Turn a UNIQUE constraint failure into ``Conflict(message)``."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" not in str(exc):
            raise
        raise Conflict(message) from None
