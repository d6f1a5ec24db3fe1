"""Choosing the store's backend from the settings: SQLite by default, PostgreSQL by URL.

``database.url`` of ``postgresql://…`` (or ``postgres://…``) opens the
PostgreSQL store, which needs the optional ``asyncpg`` (``pilothouse[postgres]``);
anything else is SQLite — the file the URL names, or ``<state_dir>/hub.db``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from pilothouse.hub.errors import StorageError
from pilothouse.hub.settings import HubSettings
from pilothouse.hub.store.interface import Store
from pilothouse.hub.store.sqlite.store import open_sqlite


@contextlib.asynccontextmanager
async def open_store(
    settings: HubSettings, on_change: Callable[[str], None], on_events: Callable[[], None]
) -> AsyncIterator[Store]:
    """Open the store the settings name (creating and migrating it as needed); close it after."""
    if not settings.uses_postgres:
        async with open_sqlite(
            settings.database_path, settings.database, on_change, on_events
        ) as store:
            yield store
        return
    try:
        from pilothouse.hub.store.postgres.store import open_postgres
    except ImportError as exc:
        raise StorageError(
            "database.url names a PostgreSQL database, but its driver is not installed: "
            f"pip install 'pilothouse[postgres]' ({exc})"
        ) from exc
    url = settings.database.url or ""
    async with open_postgres(url, settings.database, on_change, on_events) as pg_store:
        yield pg_store
