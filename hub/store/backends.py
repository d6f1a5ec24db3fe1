"""Choosing the store's backend from the settings: SQLite by default, PostgreSQL by URL.

``database.url`` of ``postgresql://…`` (or ``postgres://…``) opens the
PostgreSQL store, which needs the optional ``asyncpg`` (``pilothouse[postgres]``);
anything else is SQLite — the file the URL names, or ``<state_dir>/hub.db``.

What the app gets is a :class:`Backend`: the store, the lease that gates the
background work, and the backend's own eternal tasks, run on every replica.
SQLite has none and always holds its lease (one process owns the file). On
PostgreSQL each replica runs a *listener* (the live channel,
:mod:`~pilothouse.hub.store.postgres.channel`) and a *lease keeper*
(:mod:`~pilothouse.hub.store.postgres.lease`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from pilothouse.hub.errors import StorageError
from pilothouse.hub.settings import HubSettings
from pilothouse.hub.store.interface import Store
from pilothouse.hub.store.leases import Lease, SoleLease
from pilothouse.hub.store.sqlite.store import open_sqlite


@dataclass(frozen=True, slots=True)
class Callbacks:
    """What the store rings: a PE changed, events were stored, something may have been missed."""

    on_change: Callable[[str], None]
    on_events: Callable[[], None]
    on_gap: Callable[[], None]
    now_us: Callable[[], int]
    """The clock of the background work (claims are released at its time)."""


@dataclass(frozen=True, slots=True)
class Backend:
    """The store and how this replica takes part in the background work."""

    store: Store
    lease: Lease
    tasks: dict[str, Callable[[], Awaitable[None]]] = field(default_factory=dict)
    """Eternal tasks of the backend itself, run on every replica."""
    replica: str = ""
    """This replica's name in the database (PostgreSQL)."""


def replica_name() -> str:
    """A name for this hub process, unique among the replicas: host, pid, a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@contextlib.asynccontextmanager
async def open_backend(settings: HubSettings, callbacks: Callbacks) -> AsyncIterator[Backend]:
    """Open the store the settings name (creating and migrating it as needed); close it after."""
    if not settings.uses_postgres:
        async with open_sqlite(
            settings.database_path, settings.database, callbacks.on_change, callbacks.on_events
        ) as store:
            yield Backend(store, SoleLease())
        return
    try:
        from pilothouse.hub.store.postgres import replicas
    except ImportError as exc:
        raise StorageError(
            "database.url names a PostgreSQL database, but its driver is not installed: "
            f"pip install 'pilothouse[postgres]' ({exc})"
        ) from exc
    async with replicas.open_replica(settings, callbacks, replica_name()) as (store, lease, tasks):
        yield Backend(store, lease, tasks, replicas.name_of(store))


@contextlib.asynccontextmanager
async def open_store(
    settings: HubSettings, on_change: Callable[[str], None], on_events: Callable[[], None]
) -> AsyncIterator[Store]:
    """Just the store (tools that copy or inspect a database; no background work)."""
    callbacks = Callbacks(on_change, on_events, on_events, lambda: 0)
    async with open_backend(settings, callbacks) as backend:
        yield backend.store
