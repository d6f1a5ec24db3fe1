"""The SQLite implementation of :class:`~hub.store.interface.Store`.

Each method hands one function of :mod:`.environments`, :mod:`.packages`,
:mod:`.deployments` or :mod:`.events` to the connection threads — writes to
the writer, reads to a reader — and awaits it. Writes that change a PE's
desired state name the PE to ``on_change`` once committed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from agent.model.desired import DesiredDeployment
from hub.api.schemas import EventIn, EventOut, ModelPackage, Observed, PredictionEnvironment
from hub.settings import DatabaseSettings
from hub.store.interface import DeploymentChange
from hub.store.records import DeploymentRecord, EventFilter, PageQuery, Replay
from hub.store.sqlite import deployments, environments, migrations, packages
from hub.store.sqlite import events as event_sql
from hub.store.sqlite.connections import connect
from hub.store.sqlite.threads import ConnectionThreads


@contextlib.asynccontextmanager
async def open_sqlite(
    path: Path, settings: DatabaseSettings, on_change: Callable[[str], None]
) -> AsyncIterator[SqliteStore]:
    """Open (creating and migrating as needed) the database at ``path``; close it after."""
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    threads = ConnectionThreads(
        partial(connect, path, settings, writer=True),
        partial(connect, path, settings, writer=False),
        settings.readers,
    )
    await threads.start()
    try:
        await threads.write(migrations.migrate, transaction=False)
        yield SqliteStore(threads, on_change)
    finally:
        await threads.close()


class SqliteStore:
    """The hub's state in one SQLite file (WAL mode)."""

    def __init__(self, threads: ConnectionThreads, on_change: Callable[[str], None]) -> None:
        self._threads = threads
        self._on_change = on_change

    async def close(self) -> None:
        """Finish pending work and release every connection."""
        await self._threads.close()

    async def ping(self) -> None:
        """Raise unless the database answers a query."""
        await self._threads.read(lambda conn: conn.execute("SELECT 1").fetchone())

    async def add_environment(self, env: PredictionEnvironment) -> None:
        """Store a new PE; ``Conflict`` if its name is taken."""
        await self._threads.write(partial(environments.add, env=env))

    async def get_environment(self, pe_id: str) -> PredictionEnvironment:
        """One PE, with what is known of its agent."""
        return await self._threads.read(partial(environments.get, pe_id=pe_id))

    async def list_environments(self, page: PageQuery) -> list[PredictionEnvironment]:
        """PEs, newest first."""
        return await self._threads.read(partial(environments.page, query=page))

    async def known_environments(self, ids: Collection[str]) -> set[str]:
        """Which of ``ids`` are registered PEs."""
        return await self._threads.read(partial(environments.known, ids=ids))

    async def add_agent_token(
        self, token_id: str, pe_id: str, token_sha256: str, created_us: int
    ) -> None:
        """Store the hash of a new agent token of ``pe_id``."""
        add = partial(environments.add_token, token_id=token_id, pe_id=pe_id)
        await self._threads.write(partial(add, token_sha256=token_sha256, created_us=created_us))

    async def environment_for_token(self, token_sha256: str) -> str | None:
        """The PE an agent token (by hash) belongs to, if any."""
        return await self._threads.read(partial(environments.for_token, token_sha256=token_sha256))

    async def record_heartbeat(
        self, pe_id: str, at_us: int, info: dict[str, Any], online: Callable[[], EventIn]
    ) -> bool:
        """Note a heartbeat; if the agent was not online, mark it and store ``online()``."""
        return await self._threads.write(
            partial(environments.heartbeat, pe_id=pe_id, at_us=at_us, info=info, online=online)
        )

    async def mark_offline(self, cutoff_us: int, offline: Callable[[str], EventIn]) -> list[str]:
        """Mark offline every online agent silent since before ``cutoff_us``; store events."""
        return await self._threads.write(
            partial(environments.mark_offline, cutoff_us=cutoff_us, offline=offline)
        )

    async def add_package(self, package: ModelPackage) -> tuple[ModelPackage, bool]:
        """Store a package; with the same sha256 already stored, return that one and False."""
        return await self._threads.write(partial(packages.add, package=package))

    async def get_package(self, package_id: str) -> ModelPackage:
        """One model package."""
        return await self._threads.read(partial(packages.get, package_id=package_id))

    async def package_by_sha256(self, sha256: str) -> ModelPackage | None:
        """The package with this content, if stored."""
        return await self._threads.read(partial(packages.by_sha256, sha256=sha256))

    async def list_packages(self, page: PageQuery) -> list[ModelPackage]:
        """Model packages, newest first."""
        return await self._threads.read(partial(packages.page, query=page))

    async def known_packages(self, ids: Collection[str]) -> set[str]:
        """Which of ``ids`` are stored model packages."""
        return await self._threads.read(partial(packages.known, ids=ids))

    async def add_deployment(self, record: DeploymentRecord, event: EventIn) -> None:
        """Store a new deployment (a change of its PE) and the event recording it."""
        pe_id = record.prediction_environment_id
        await self._threads.write(
            partial(deployments.add, record=record, event=event),
            after=lambda _: self._on_change(pe_id),
        )

    async def update_deployment(
        self, deployment_id: str, change: DeploymentChange
    ) -> DeploymentRecord:
        """Apply ``change`` to a live deployment atomically; a change of its PE."""
        return await self._threads.write(
            partial(deployments.update, deployment_id=deployment_id, change=change),
            after=lambda record: self._on_change(record.prediction_environment_id),
        )

    async def get_deployment(self, deployment_id: str) -> DeploymentRecord:
        """A live deployment (deleted ones are not found)."""
        return await self._threads.read(partial(deployments.get, deployment_id=deployment_id))

    async def list_deployments(self, pe_id: str | None, page: PageQuery) -> list[DeploymentRecord]:
        """Live deployments, newest first, optionally of one PE."""
        return await self._threads.read(partial(deployments.page, pe_id=pe_id, query=page))

    async def set_observed(self, deployment_id: str, observed: Observed) -> None:
        """Store what the agent observes, unless it is older than what is stored."""
        await self._threads.write(
            partial(deployments.set_observed, deployment_id=deployment_id, observed=observed)
        )

    async def desired_state(self, pe_id: str) -> tuple[int, list[DesiredDeployment]]:
        """The PE's revision and live deployments, read together."""
        return await self._threads.read(partial(deployments.desired_state, pe_id=pe_id))

    async def revision(self, pe_id: str) -> int:
        """The PE's latest change number (0 before its first change)."""
        return await self._threads.read(partial(deployments.revision, pe_id=pe_id))

    async def replay(self, pe_id: str, after: int) -> Replay | None:
        """Each deployment's latest change after revision ``after``; None if it cannot be."""
        return await self._threads.read(partial(deployments.replay, pe_id=pe_id, after=after))

    async def add_events(self, events: Sequence[EventIn]) -> int:
        """Store the events not stored yet (by id); return how many were new."""
        return await self._threads.write(partial(event_sql.insert, events=events))

    async def list_events(self, query: EventFilter) -> list[EventOut]:
        """Events matching ``query``, newest first (time, then id)."""
        return await self._threads.read(partial(event_sql.select, query=query))
