"""One replica over the shared PostgreSQL database: its store, lease and live channel.

:func:`open_replica` opens the store (migrating once, under a lock), and makes
the two eternal tasks every replica runs: the *listener* of the live channel
and the *lease keeper*. When this replica acquires the lease it first makes the
notification deliveries claimed by the former holder due again.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from pilothouse.hub.settings import HubSettings
from pilothouse.hub.store.postgres.channel import Listener
from pilothouse.hub.store.postgres.lease import AdvisoryLease
from pilothouse.hub.store.postgres.store import PostgresStore, open_postgres

if TYPE_CHECKING:
    from pilothouse.hub.store.backends import Callbacks

Tasks = dict[str, Callable[[], Awaitable[None]]]


@contextlib.asynccontextmanager
async def open_replica(
    settings: HubSettings, callbacks: Callbacks, replica: str
) -> AsyncIterator[tuple[PostgresStore, AdvisoryLease, Tasks]]:
    """The store, the lease and the eternal tasks of replica ``replica``; closed after."""
    url = settings.database.url or ""
    async with open_postgres(
        url, settings.database, callbacks.on_change, callbacks.on_events, replica=replica
    ) as store:
        lease = AdvisoryLease(
            url, settings.database, lambda: store.release_claims(callbacks.now_us())
        )
        listener = Listener(
            url,
            replica,
            callbacks.on_change,
            callbacks.on_events,
            callbacks.on_gap,
            settings.database.lease_poll_s,
        )
        yield store, lease, {"live channel": listener.listen, "lease keeper": lease.keep}


def name_of(store: object) -> str:
    """The replica name of a PostgreSQL store."""
    return store.replica if isinstance(store, PostgresStore) else ""
