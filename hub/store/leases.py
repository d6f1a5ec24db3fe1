"""Who runs the hub's background work: a lease that at most one replica holds at a time.

The notification dispatcher, the retention purge and offline detection must
run once per database, not once per replica. Each runs gated by a :class:`Lease`
(:mod:`pilothouse.hub.service.exclusive`): it starts when this replica acquires
the lease and is cancelled when the replica loses it. With SQLite the hub is
the only process on its database, so the lease is always held
(:class:`SoleLease`); on PostgreSQL it is an advisory lock
(:mod:`pilothouse.hub.store.postgres.lease`).
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class Lease(Protocol):
    """The right to run the background work."""

    @property
    def held(self) -> bool:
        """Whether this replica holds the lease now."""

    async def acquired(self) -> None:
        """Return once this replica holds the lease."""

    async def lost(self) -> None:
        """Return once this replica no longer holds it (at once if it does not)."""


class SoleLease:
    """The lease of a hub alone on its database: held from the start, never lost."""

    def __init__(self) -> None:
        self._never = asyncio.Event()

    @property
    def held(self) -> bool:
        """Always."""
        return True

    async def acquired(self) -> None:
        """Return at once."""

    async def lost(self) -> None:
        """Never return."""
        await self._never.wait()
