"""The SQLite implementation of :class:`~pilothouse.hub.store.interface.Store`.

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

from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.hub.api.schemas import (
    AgentTokenInfo,
    EventIn,
    EventOut,
    ExportFormat,
    ModelPackage,
    NotificationChannel,
    NotificationDelivery,
    NotificationPolicy,
    Observed,
    PredictionEnvironment,
)
from pilothouse.hub.settings import DatabaseSettings
from pilothouse.hub.store.interface import ChannelChange, DeploymentChange, PolicyChange
from pilothouse.hub.store.records import (
    AttemptRecord,
    ChannelRecord,
    Composer,
    DeliveryFilter,
    DeliveryJob,
    DeploymentRecord,
    EventFilter,
    ExportChunk,
    JoinedActual,
    MonitoringState,
    NewDelivery,
    PageQuery,
    Replay,
    RetentionState,
    Router,
    StoredAssociation,
    StoredWindow,
    TailChunk,
    TokenKind,
    WindowMerge,
)
from pilothouse.hub.store.sqlite import (
    alerting,
    channels,
    deliveries,
    deployments,
    environments,
    exports,
    management,
    migrations,
    monitoring,
    packages,
    policies,
    retention,
    tailing,
)
from pilothouse.hub.store.sqlite import events as event_sql
from pilothouse.hub.store.sqlite.connections import connect
from pilothouse.hub.store.sqlite.threads import ConnectionThreads

SCANNERS = 2
"""Threads (and connections) for exports: two exports run at once, more take turns."""


@contextlib.asynccontextmanager
async def open_sqlite(
    path: Path,
    settings: DatabaseSettings,
    on_change: Callable[[str], None],
    on_events: Callable[[], None] | None = None,
) -> AsyncIterator[SqliteStore]:
    """Open (creating and migrating as needed) the database at ``path``; close it after."""
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    threads = ConnectionThreads(
        partial(connect, path, settings, writer=True),
        partial(connect, path, settings, writer=False),
        settings.readers,
        partial(connect, path, settings, writer=False, scanner=True),
        SCANNERS,
    )
    await threads.start()
    try:
        await threads.write(migrations.migrate, transaction=False)
        yield SqliteStore(threads, on_change, on_events or _nothing)
    finally:
        await threads.close()


def _nothing() -> None:
    pass


class SqliteStore:
    """The hub's state in one SQLite file (WAL mode)."""

    def __init__(
        self,
        threads: ConnectionThreads,
        on_change: Callable[[str], None],
        on_events: Callable[[], None] = _nothing,
    ) -> None:
        self._threads = threads
        self._on_change = on_change
        self._on_events = on_events

    def _changed(self, pe_id: str) -> None:
        self._on_change(pe_id)
        self._on_events()

    def _events_if(self, stored: object) -> None:
        """Ring ``on_events`` if a write stored any event (a count, a flag, a list)."""
        if stored:
            self._on_events()

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
        self,
        token_id: str,
        pe_id: str,
        token_sha256: str,
        created_us: int,
        kind: TokenKind = "agent",
    ) -> None:
        """Store the hash of a new token of ``pe_id`` (an agent token, or a package token)."""
        add = partial(environments.add_token, token_id=token_id, pe_id=pe_id, kind=kind)
        await self._threads.write(partial(add, token_sha256=token_sha256, created_us=created_us))

    async def environment_for_token(self, token_sha256: str) -> tuple[str, str, TokenKind] | None:
        """The id, PE and kind of the live (not revoked) token with this hash, if any."""
        return await self._threads.read(partial(environments.for_token, token_sha256=token_sha256))

    async def token_live(self, token_id: str) -> bool:
        """Whether an agent token exists and is not revoked."""
        return await self._threads.read(partial(environments.token_live, token_id=token_id))

    async def list_agent_tokens(
        self, pe_id: str, page: PageQuery, kind: TokenKind = "agent"
    ) -> list[AgentTokenInfo]:
        """The PE's tokens of ``kind``, revoked ones too, newest first; ``NotFound`` for the PE."""
        listing = partial(environments.tokens, pe_id=pe_id, query=page, kind=kind)
        return await self._threads.read(listing)

    async def revoke_agent_token(
        self, pe_id: str, token_id: str, at_us: int, kind: TokenKind = "agent"
    ) -> AgentTokenInfo:
        """Revoke one of the PE's tokens of ``kind`` (idempotent); ``NotFound`` if not the PE's."""
        revoke = partial(environments.revoke_token, pe_id=pe_id, token_id=token_id, kind=kind)
        return await self._threads.write(partial(revoke, at_us=at_us))

    async def environment_uses_package(self, pe_id: str, package_id: str) -> bool:
        """Whether a live deployment of ``pe_id`` wants or runs ``package_id``."""
        uses = partial(environments.uses_package, pe_id=pe_id, package_id=package_id)
        return await self._threads.read(uses)

    async def deployment_environments(self, ids: Collection[str]) -> dict[str, str]:
        """The PE of each of ``ids`` that is a deployment, deleted ones included."""
        return await self._threads.read(partial(deployments.environments_of, ids=ids))

    async def record_heartbeat(
        self, pe_id: str, at_us: int, info: dict[str, Any], online: Callable[[], EventIn]
    ) -> bool:
        """Note a heartbeat; if the agent was not online, mark it and store ``online()``."""
        return await self._threads.write(
            partial(environments.heartbeat, pe_id=pe_id, at_us=at_us, info=info, online=online),
            after=self._events_if,
        )

    async def mark_offline(self, cutoff_us: int, offline: Callable[[str], EventIn]) -> list[str]:
        """Mark offline every online agent silent since before ``cutoff_us``; store events."""
        return await self._threads.write(
            partial(environments.mark_offline, cutoff_us=cutoff_us, offline=offline),
            after=self._events_if,
        )

    async def set_management_agent(
        self, pe_id: str, enabled: bool, at_us: int, event: Callable[[bool], EventIn]
    ) -> bool:
        """Turn the PE's management agent on or off; if that changed it, store the event."""
        return await self._threads.write(
            partial(management.switch, pe_id=pe_id, enabled=enabled, at_us=at_us, event=event),
            after=lambda changed: self._changed(pe_id) if changed else None,
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
            after=lambda _: self._changed(pe_id),
        )

    async def update_deployment(
        self, deployment_id: str, change: DeploymentChange
    ) -> DeploymentRecord:
        """Apply ``change`` to a live deployment atomically; a change of its PE."""
        return await self._threads.write(
            partial(deployments.update, deployment_id=deployment_id, change=change),
            after=lambda record: self._changed(record.prediction_environment_id),
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
        return await self._threads.write(
            partial(event_sql.insert, events=events),
            after=self._events_if,
        )

    async def list_events(self, query: EventFilter) -> list[EventOut]:
        """Events matching ``query``, newest first (time, then id)."""
        return await self._threads.read(partial(event_sql.select, query=query))

    async def event_snapshot(self, query: EventFilter) -> tuple[list[EventOut], int]:
        """Events matching ``query``, newest first, and the ingest position they were read at."""
        return await self._threads.read(partial(tailing.snapshot, query=query))

    async def tail_events(self, after: int, query: EventFilter, scan: int) -> TailChunk:
        """Events matching ``query`` stored after position ``after`` (``scan`` rows at most)."""
        return await self._threads.read(partial(tailing.after, seq=after, query=query, scan=scan))

    async def scan_events(self, query: EventFilter, fmt: ExportFormat) -> ExportChunk:
        """Up to ``query.limit`` events after ``query.after``, newest first, rendered as ``fmt``."""
        return await self._threads.scan(partial(exports.scan, query=query, fmt=fmt))

    async def retention(self) -> RetentionState:
        """The retention set through the API (if any) and the last purge."""
        return await self._threads.read(retention.read)

    async def set_retention(self, days: int, at_us: int) -> RetentionState:
        """Set the retention."""
        return await self._threads.write(partial(retention.write, days=days, at_us=at_us))

    async def purge_events(self, now_us: int, default_days: int, limit: int) -> int:
        """Remove up to ``limit`` events older than the retention (one transaction)."""
        return await self._threads.write(
            partial(retention.purge_batch, now_us=now_us, default_days=default_days, limit=limit)
        )

    async def record_purge(self, at_us: int, removed: int, events: Sequence[EventIn]) -> None:
        """Note a finished purge and store the events recording it."""
        await self._threads.write(
            partial(retention.record, at_us=at_us, removed=removed, recorded=events),
            after=lambda _: self._events_if(events),
        )

    async def add_channel(self, record: ChannelRecord) -> None:
        """Store a new channel; ``Conflict`` if its name is taken."""
        await self._threads.write(partial(channels.add, record=record))

    async def get_channel(self, channel_id: str) -> ChannelRecord:
        """One channel, with its sealed URL and secret."""
        return await self._threads.read(partial(channels.get, channel_id=channel_id))

    async def list_channels(self, page: PageQuery) -> list[NotificationChannel]:
        """Channels, newest first."""
        return await self._threads.read(partial(channels.page, query=page))

    async def update_channel(self, channel_id: str, change: ChannelChange) -> ChannelRecord:
        """Apply ``change`` to a channel atomically."""
        return await self._threads.write(
            partial(channels.update, channel_id=channel_id, change=change)
        )

    async def delete_channel(self, channel_id: str) -> None:
        """Delete a channel; ``Conflict`` while a policy sends to it."""
        await self._threads.write(partial(channels.delete, channel_id=channel_id))

    async def add_policy(self, policy: NotificationPolicy) -> None:
        """Store a new policy; ``NotFound`` naming ``channel_id`` if its channel is unknown."""
        await self._threads.write(partial(policies.add, policy=policy))

    async def get_policy(self, policy_id: str) -> NotificationPolicy:
        """One policy."""
        return await self._threads.read(partial(policies.get, policy_id=policy_id))

    async def list_policies(self, page: PageQuery) -> list[NotificationPolicy]:
        """Policies, newest first."""
        return await self._threads.read(partial(policies.page, query=page))

    async def update_policy(self, policy_id: str, change: PolicyChange) -> NotificationPolicy:
        """Apply ``change`` to a policy atomically; disabling it forgets its alert groups."""
        return await self._threads.write(
            partial(policies.update, policy_id=policy_id, change=change)
        )

    async def delete_policy(self, policy_id: str) -> None:
        """Delete a policy and its alert groups (its deliveries stay in the log)."""
        await self._threads.write(partial(policies.delete, policy_id=policy_id))

    async def route_events(self, now_us: int, limit: int, router: Router) -> int:
        """Route up to ``limit`` events stored after the routing cursor; return how many."""
        return await self._threads.write(
            partial(alerting.route, now_us=now_us, limit=limit, router=router)
        )

    async def flush_groups(self, now_us: int, limit: int, composer: Composer) -> int:
        """Compose the messages of up to ``limit`` due groups; return how many were due."""
        return await self._threads.write(
            partial(alerting.flush, now_us=now_us, limit=limit, composer=composer)
        )

    async def next_due(self) -> int | None:
        """When a group or a delivery is next due (µs), if ever."""
        return await self._threads.read(alerting.next_due)

    async def add_delivery(self, new: NewDelivery, attempt: AttemptRecord | None = None) -> None:
        """Store a message to send now, or one already attempted (with that attempt)."""
        await self._threads.write(partial(deliveries.add, new=new, attempt=attempt))

    async def claim_deliveries(self, now_us: int, lease_us: int, limit: int) -> list[DeliveryJob]:
        """Up to ``limit`` due deliveries, each leased for one attempt."""
        return await self._threads.write(
            partial(deliveries.claim, now_us=now_us, lease_us=lease_us, limit=limit)
        )

    async def record_attempt(self, attempt: AttemptRecord) -> None:
        """Log an attempt and set its delivery's state."""
        await self._threads.write(partial(deliveries.record, attempt=attempt))

    async def get_delivery(self, delivery_id: str) -> NotificationDelivery:
        """One delivery with its attempts."""
        return await self._threads.read(partial(deliveries.get, delivery_id=delivery_id))

    async def list_deliveries(self, query: DeliveryFilter) -> list[NotificationDelivery]:
        """Deliveries matching ``query``, newest first, with their attempts."""
        return await self._threads.read(partial(deliveries.page, query=query))

    async def add_windows(
        self, windows: Sequence[StoredWindow], associations: Sequence[StoredAssociation]
    ) -> list[str]:
        """Store the windows whose id is new, with their associations; return the new ids."""
        return await self._threads.write(
            partial(monitoring.add, windows=windows, associations=associations)
        )

    async def window_bodies(self, deployment_id: str, from_us: int, to_us: int) -> list[str]:
        """The deployment's window bodies (JSON) starting in the range: raw, then hourly."""
        return await self._threads.read(
            partial(monitoring.bodies, deployment_id=deployment_id, from_us=from_us, to_us=to_us)
        )

    async def roll_up_windows(self, before_us: int, limit: int, merge: WindowMerge) -> int:
        """Add up to ``limit`` windows older than ``before_us`` into their hour; return how many."""
        return await self._threads.write(
            partial(monitoring.roll_up, before_us=before_us, limit=limit, merge=merge)
        )

    async def purge_statistics(self, now_us: int, default_days: int, limit: int) -> int:
        """Remove up to ``limit`` rows per statistics table older than the event retention."""
        return await self._threads.write(
            partial(monitoring.purge, now_us=now_us, default_days=default_days, limit=limit)
        )

    async def monitoring_state(self, deployment_id: str) -> MonitoringState:
        """The deployment's recorded drift status and last retraining trigger."""
        return await self._threads.read(partial(monitoring.state, deployment_id=deployment_id))

    async def set_drift(
        self,
        deployment_id: str,
        expected: Status,
        status: Status,
        detail: dict[str, object],
        event: EventIn,
    ) -> bool:
        """Record a new drift status with its event, if it is still ``expected`` (else False)."""
        change = partial(monitoring.set_drift, deployment_id=deployment_id, expected=expected)
        return await self._threads.write(
            partial(change, status=status, detail=detail, event=event), after=self._events_if
        )

    async def claim_retraining(self, deployment_id: str, now_us: int, cooldown_us: int) -> bool:
        """Note a retraining trigger now unless one was within ``cooldown_us``; tell if noted."""
        claim = partial(monitoring.claim_retraining, deployment_id=deployment_id)
        return await self._threads.write(partial(claim, now_us=now_us, cooldown_us=cooldown_us))

    async def record_actuals(self, deployment_id: str, actuals: Sequence[tuple[str, str]]) -> int:
        """Store actuals (association id, JSON value, ids distinct) of known associations; count."""
        return await self._threads.write(
            partial(monitoring.record_actuals, deployment_id=deployment_id, actuals=actuals)
        )

    async def joined_actuals(
        self, deployment_id: str, from_us: int, to_us: int
    ) -> list[JoinedActual]:
        """Predictions with their actuals, of windows starting in ``[from_us, to_us)``."""
        return await self._threads.read(
            partial(monitoring.joined, deployment_id=deployment_id, from_us=from_us, to_us=to_us)
        )
