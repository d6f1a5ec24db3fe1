"""The PostgreSQL implementation of :class:`~pilothouse.hub.store.interface.Store`.

Each method runs one function of :mod:`.environments`, :mod:`.packages`,
:mod:`.deployments`, :mod:`.events` … on a pooled connection — a write in one
transaction (:meth:`Database.write`), a read as one statement or one snapshot —
and awaits it. Writes that change a PE's desired state name the PE to
``on_change`` once committed, writes that store events ring ``on_events``, on
this replica; :mod:`.channel` carries both to the other replicas.

PostgreSQL's text cannot hold NUL (U+0000): no stored id contains one, so a
lookup of such an id is answered as SQLite answers it — not found, or an empty
list — without asking the database; storing free text with one is refused
(422, :func:`~.db.translated`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from functools import partial
from typing import Any

import asyncpg

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
from pilothouse.hub.errors import NotFound, StorageError
from pilothouse.hub.settings import DatabaseSettings
from pilothouse.hub.store.interface import ChannelChange, DeploymentChange, PolicyChange
from pilothouse.hub.store.postgres import (
    alerting,
    channels,
    deliveries,
    deployments,
    environments,
    ingest,
    management,
    migrations,
    monitoring,
    packages,
    policies,
    retention,
    tailing,
)
from pilothouse.hub.store.postgres import events as event_sql
from pilothouse.hub.store.postgres.channel import EventBell, notify_change
from pilothouse.hub.store.postgres.db import Connection, Database, translated
from pilothouse.hub.store.postgres.exports import Scans
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

log = logging.getLogger("pilothouse.hub.store")

ROUTE_AGAIN_S = 0.05
"""How soon routing looks again when events of still-running transactions were left."""


@contextlib.asynccontextmanager
async def open_postgres(
    url: str,
    settings: DatabaseSettings,
    on_change: Callable[[str], None],
    on_events: Callable[[], None] | None = None,
    *,
    replica: str = "",
) -> AsyncIterator[PostgresStore]:
    """Connect to ``url``, migrate the schema (once, under a lock), and close after."""
    pool = await connect_pool(url, settings)
    db = Database(pool)
    try:
        async with db.connection() as conn:
            with translated():
                await migrations.migrate(conn)
        store = PostgresStore(
            db, on_change, on_events or _nothing, replica=replica, bell=EventBell(pool, replica)
        )
        try:
            yield store
        finally:
            await store.close()
    finally:
        await db.close()


async def connect_pool(url: str, settings: DatabaseSettings) -> asyncpg.Pool:
    """A pool of connections to ``url``, or ``StorageError`` saying why there is none."""
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=1,
            max_size=settings.pool_size,
            timeout=settings.connect_timeout_s,
            command_timeout=None,
            server_settings={"application_name": "pilothouse-hub"},
            reset=_keep_session,
            init=ingest.prepare,
        )
    except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise StorageError(
            f"cannot connect to the PostgreSQL database ({_without_password(url)}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """A connection back in the pool is ready as it is: no reset query, a round trip saved.

    asyncpg's default resets every connection released (``RESET ALL``, ``UNLISTEN *``,
    ``CLOSE ALL``, advisory locks released): one more round trip per request, for
    session state the hub never leaves on a pooled connection. It sets no settings,
    listens only on connections of their own (:mod:`.channel`, :mod:`.lease`),
    releases the migration lock itself, and opens cursors only inside transactions,
    which asyncpg rolls back before this is called if one is still open.
    """


def _without_password(url: str) -> str:
    head, at, tail = url.rpartition("@")
    if not at or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, credentials = head.partition("//")
    return f"{scheme}//{credentials.split(':', 1)[0]}:***@{tail}"


def _nothing() -> None:
    pass


def _unstorable(*texts: str | None) -> bool:
    """Whether a text holds NUL, which PostgreSQL never stores: no such id exists."""
    return any(text is not None and "\0" in text for text in texts)


def _storable(ids: Collection[str]) -> list[str]:
    return [i for i in ids if "\0" not in i]


def _filters(query: EventFilter | DeliveryFilter) -> tuple[str | None, ...]:
    if isinstance(query, DeliveryFilter):
        return (query.channel_id, query.policy_id, query.deployment_id)
    after = None if query.after is None else query.after.id
    return (query.prediction_environment_id, query.deployment_id, query.type, after)


class PostgresStore:
    """The hub's state in one PostgreSQL database, shared by every replica."""

    def __init__(
        self,
        db: Database,
        on_change: Callable[[str], None],
        on_events: Callable[[], None] = _nothing,
        *,
        replica: str = "",
        bell: EventBell | None = None,
    ) -> None:
        self._db = db
        self._on_change = on_change
        self._on_events = on_events
        self._bell = bell
        self._scans = Scans(db.pool)
        self.replica = replica
        """Who this replica is, in the database (delivery claims name it)."""

    @property
    def pool(self) -> asyncpg.Pool:
        """The connection pool (the live channel and the lease take theirs from it)."""
        return self._db.pool

    def _changed(self, pe_id: str) -> None:
        self._on_change(pe_id)
        self._stored_events()

    def _events_if(self, stored: object) -> None:
        """Ring ``on_events`` if a write stored any event (a count, a flag, a list)."""
        if stored:
            self._stored_events()

    def _stored_events(self) -> None:
        self._on_events()
        if self._bell is not None:
            self._bell.ring()

    async def _telling(self, conn: Connection, job: Any, pe_id: str) -> Any:
        """Run ``job``, then have the commit tell every replica that ``pe_id`` changed."""
        result = await job(conn)
        await notify_change(conn, self.replica, pe_id)
        return result

    async def close(self) -> None:
        """Close every export scan and the bell (the pool is closed by :func:`open_postgres`)."""
        await self._scans.close()
        if self._bell is not None:
            await self._bell.close()

    async def ping(self) -> None:
        """Raise unless the database answers a query."""
        await self._db.read(lambda conn: conn.fetchval("SELECT 1"))

    async def add_environment(self, env: PredictionEnvironment) -> None:
        """Store a new PE; ``Conflict`` if its name is taken."""
        await self._db.write(partial(environments.add, env=env))

    async def get_environment(self, pe_id: str) -> PredictionEnvironment:
        """One PE, with what is known of its agent."""
        if _unstorable(pe_id):
            raise NotFound.of("prediction environment", pe_id)
        return await self._db.read(partial(environments.get, pe_id=pe_id))

    async def list_environments(self, page: PageQuery) -> list[PredictionEnvironment]:
        """PEs, newest first."""
        return await self._db.read(partial(environments.page, query=page))

    async def known_environments(self, ids: Collection[str]) -> set[str]:
        """Which of ``ids`` are registered PEs."""
        return await self._db.read(partial(environments.known, ids=_storable(ids)))

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
        await self._db.write(partial(add, token_sha256=token_sha256, created_us=created_us))

    async def environment_for_token(self, token_sha256: str) -> tuple[str, str, TokenKind] | None:
        """The id, PE and kind of the live (not revoked) token with this hash, if any."""
        return await self._db.read(partial(environments.for_token, token_sha256=token_sha256))

    async def token_live(self, token_id: str) -> bool:
        """Whether an agent token exists and is not revoked."""
        return await self._db.read(partial(environments.token_live, token_id=token_id))

    async def list_agent_tokens(
        self, pe_id: str, page: PageQuery, kind: TokenKind = "agent"
    ) -> list[AgentTokenInfo]:
        """The PE's tokens of ``kind``, revoked ones too, newest first; ``NotFound`` for the PE."""
        if _unstorable(pe_id):
            raise NotFound.of("prediction environment", pe_id)
        return await self._db.read(
            partial(environments.tokens, pe_id=pe_id, query=page, kind=kind), snapshot=True
        )

    async def revoke_agent_token(
        self, pe_id: str, token_id: str, at_us: int, kind: TokenKind = "agent"
    ) -> AgentTokenInfo:
        """Revoke one of the PE's tokens of ``kind`` (idempotent); ``NotFound`` if not the PE's."""
        if _unstorable(pe_id, token_id):
            raise NotFound.of(f"{kind} token", token_id)
        revoke = partial(
            environments.revoke_token, pe_id=pe_id, token_id=token_id, at_us=at_us, kind=kind
        )
        return await self._db.write(lambda conn: self._telling(conn, revoke, pe_id))

    async def environment_uses_package(self, pe_id: str, package_id: str) -> bool:
        """Whether a live deployment of ``pe_id`` wants or runs ``package_id``."""
        if _unstorable(pe_id, package_id):
            return False
        uses = partial(environments.uses_package, pe_id=pe_id, package_id=package_id)
        return await self._db.read(uses)

    async def deployment_environments(self, ids: Collection[str]) -> dict[str, str]:
        """The PE of each of ``ids`` that is a deployment, deleted ones included."""
        return await self._db.read(partial(deployments.environments_of, ids=_storable(ids)))

    async def record_heartbeat(
        self, pe_id: str, at_us: int, info: dict[str, Any], online: Callable[[], EventIn]
    ) -> bool:
        """Note a heartbeat; if the agent was not online, mark it and store ``online()``."""
        return await self._db.write(
            partial(environments.heartbeat, pe_id=pe_id, at_us=at_us, info=info, online=online),
            after=self._events_if,
        )

    async def mark_offline(self, cutoff_us: int, offline: Callable[[str], EventIn]) -> list[str]:
        """Mark offline every online agent silent since before ``cutoff_us``; store events."""
        return await self._db.write(
            partial(environments.mark_offline, cutoff_us=cutoff_us, offline=offline),
            after=self._events_if,
        )

    async def set_management_agent(
        self, pe_id: str, enabled: bool, at_us: int, event: Callable[[bool], EventIn]
    ) -> bool:
        """Turn the PE's management agent on or off; if that changed it, store the event."""
        if _unstorable(pe_id):
            raise NotFound.of("prediction environment", pe_id)
        switch = partial(management.switch, pe_id=pe_id, enabled=enabled, at_us=at_us, event=event)
        return await self._db.write(
            lambda conn: self._telling(conn, switch, pe_id),
            after=lambda changed: self._changed(pe_id) if changed else None,
        )

    async def add_package(self, package: ModelPackage) -> tuple[ModelPackage, bool]:
        """Store a package; with the same sha256 already stored, return that one and False."""
        return await self._db.write(partial(packages.add, package=package))

    async def get_package(self, package_id: str) -> ModelPackage:
        """One model package."""
        if _unstorable(package_id):
            raise NotFound.of("model package", package_id)
        return await self._db.read(partial(packages.get, package_id=package_id))

    async def package_by_sha256(self, sha256: str) -> ModelPackage | None:
        """The package with this content, if stored."""
        return await self._db.read(partial(packages.by_sha256, sha256=sha256))

    async def list_packages(self, page: PageQuery) -> list[ModelPackage]:
        """Model packages, newest first."""
        return await self._db.read(partial(packages.page, query=page))

    async def known_packages(self, ids: Collection[str]) -> set[str]:
        """Which of ``ids`` are stored model packages."""
        return await self._db.read(partial(packages.known, ids=_storable(ids)))

    async def add_deployment(self, record: DeploymentRecord, event: EventIn) -> None:
        """Store a new deployment (a change of its PE) and the event recording it."""
        pe_id = record.prediction_environment_id
        add = partial(deployments.add, record=record, event=event)
        await self._db.write(
            lambda conn: self._telling(conn, add, pe_id), after=lambda _: self._changed(pe_id)
        )

    async def update_deployment(
        self, deployment_id: str, change: DeploymentChange
    ) -> DeploymentRecord:
        """Apply ``change`` to a live deployment atomically; a change of its PE."""
        if _unstorable(deployment_id):
            raise NotFound.of("deployment", deployment_id)
        return await self._db.write(
            partial(self._update, deployment_id=deployment_id, change=change),
            after=lambda record: self._changed(record.prediction_environment_id),
        )

    async def _update(
        self, conn: Connection, deployment_id: str, change: DeploymentChange
    ) -> DeploymentRecord:
        record = await deployments.update(conn, deployment_id, change)
        await notify_change(conn, self.replica, record.prediction_environment_id)
        return record

    async def get_deployment(self, deployment_id: str) -> DeploymentRecord:
        """A live deployment (deleted ones are not found)."""
        if _unstorable(deployment_id):
            raise NotFound.of("deployment", deployment_id)
        return await self._db.read(
            partial(deployments.get, deployment_id=deployment_id), snapshot=True
        )

    async def list_deployments(self, pe_id: str | None, page: PageQuery) -> list[DeploymentRecord]:
        """Live deployments, newest first, optionally of one PE."""
        if _unstorable(pe_id):
            return []
        return await self._db.read(
            partial(deployments.page, pe_id=pe_id, query=page), snapshot=True
        )

    async def set_observed(self, deployment_id: str, observed: Observed) -> None:
        """Store what the agent observes, unless it is older than what is stored."""
        if _unstorable(deployment_id):
            raise NotFound.of("deployment", deployment_id)
        await self._db.write(
            partial(deployments.set_observed, deployment_id=deployment_id, observed=observed)
        )

    async def desired_state(self, pe_id: str) -> tuple[int, list[DesiredDeployment]]:
        """The PE's revision and live deployments, read together."""
        if _unstorable(pe_id):
            raise NotFound.of("prediction environment", pe_id)
        return await self._db.read(partial(deployments.desired_state, pe_id=pe_id), snapshot=True)

    async def revision(self, pe_id: str) -> int:
        """The PE's latest change number (0 before its first change)."""
        if _unstorable(pe_id):
            return 0
        return await self._db.read(partial(deployments.revision, pe_id=pe_id))

    async def replay(self, pe_id: str, after: int) -> Replay | None:
        """Each deployment's latest change after revision ``after``; None if it cannot be."""
        if _unstorable(pe_id):
            raise NotFound.of("prediction environment", pe_id)
        return await self._db.read(partial(deployments.replay, pe_id=pe_id, after=after))

    async def add_events(self, events: Sequence[EventIn]) -> int:
        """Store the events not stored yet (by id); return how many were new."""
        return await self._db.write(
            partial(ingest.add, batch=events), after=self._events_if, one_statement=True
        )

    async def list_events(self, query: EventFilter) -> list[EventOut]:
        """Events matching ``query``, newest first (time, then id)."""
        if _unstorable(*_filters(query)):
            return []
        return await self._db.read(partial(event_sql.select, query=query))

    async def event_snapshot(self, query: EventFilter) -> tuple[list[EventOut], int]:
        """Events matching ``query``, newest first, and the ingest position they were read at."""
        if _unstorable(*_filters(query)):
            return [], await self._db.read(tailing.position)
        return await self._db.read(partial(tailing.snapshot, query=query), snapshot=True)

    async def tail_events(self, after: int, query: EventFilter, scan: int) -> TailChunk:
        """Events matching ``query`` stored after position ``after`` (``scan`` rows at most)."""
        if _unstorable(*_filters(query)):
            return TailChunk((), after)
        chunk, unsettled = await self._db.read(
            partial(tailing.after, seq=after, query=query, scan=scan), snapshot=True
        )
        if unsettled:  # what a running transaction will commit: look again shortly
            await asyncio.sleep(ROUTE_AGAIN_S)
            return TailChunk(chunk.events, chunk.last, True)
        return chunk

    async def scan_events(self, query: EventFilter, fmt: ExportFormat) -> ExportChunk:
        """Up to ``query.limit`` events after ``query.after``, newest first, rendered as ``fmt``."""
        if _unstorable(*_filters(query)):
            return ExportChunk(b"", 0, None)
        return await self._scans.chunk(query, fmt)

    async def retention(self) -> RetentionState:
        """The retention set through the API (if any) and the last purge."""
        return await self._db.read(retention.read, snapshot=True)

    async def set_retention(self, days: int, at_us: int) -> RetentionState:
        """Set the retention."""
        return await self._db.write(partial(retention.write, days=days, at_us=at_us))

    async def purge_events(self, now_us: int, default_days: int, limit: int) -> int:
        """Remove up to ``limit`` events older than the retention (one transaction)."""
        return await self._db.write(
            partial(retention.purge_batch, now_us=now_us, default_days=default_days, limit=limit)
        )

    async def record_purge(self, at_us: int, removed: int, events: Sequence[EventIn]) -> None:
        """Note a finished purge and store the events recording it."""
        await self._db.write(
            partial(retention.record, at_us=at_us, removed=removed, recorded=events),
            after=lambda _: self._events_if(events),
        )

    async def add_channel(self, record: ChannelRecord) -> None:
        """Store a new channel; ``Conflict`` if its name is taken."""
        await self._db.write(partial(channels.add, record=record))

    async def get_channel(self, channel_id: str) -> ChannelRecord:
        """One channel, with its sealed URL and secret."""
        if _unstorable(channel_id):
            raise NotFound.of("notification channel", channel_id)
        return await self._db.read(partial(channels.get, channel_id=channel_id))

    async def list_channels(self, page: PageQuery) -> list[NotificationChannel]:
        """Channels, newest first."""
        return await self._db.read(partial(channels.page, query=page))

    async def update_channel(self, channel_id: str, change: ChannelChange) -> ChannelRecord:
        """Apply ``change`` to a channel atomically."""
        if _unstorable(channel_id):
            raise NotFound.of("notification channel", channel_id)
        return await self._db.write(partial(channels.update, channel_id=channel_id, change=change))

    async def delete_channel(self, channel_id: str) -> None:
        """Delete a channel; ``Conflict`` while a policy sends to it."""
        if _unstorable(channel_id):
            raise NotFound.of("notification channel", channel_id)
        await self._db.write(partial(channels.delete, channel_id=channel_id))

    async def add_policy(self, policy: NotificationPolicy) -> None:
        """Store a new policy; ``NotFound`` naming ``channel_id`` if its channel is unknown."""
        if _unstorable(policy.channel_id):
            raise NotFound.of("notification channel", policy.channel_id, "channel_id")
        await self._db.write(partial(policies.add, policy=policy))

    async def get_policy(self, policy_id: str) -> NotificationPolicy:
        """One policy."""
        if _unstorable(policy_id):
            raise NotFound.of("notification policy", policy_id)
        return await self._db.read(partial(policies.get, policy_id=policy_id))

    async def list_policies(self, page: PageQuery) -> list[NotificationPolicy]:
        """Policies, newest first."""
        return await self._db.read(partial(policies.page, query=page))

    async def update_policy(self, policy_id: str, change: PolicyChange) -> NotificationPolicy:
        """Apply ``change`` to a policy atomically; disabling it forgets its alert groups."""
        if _unstorable(policy_id):
            raise NotFound.of("notification policy", policy_id)
        return await self._db.write(partial(policies.update, policy_id=policy_id, change=change))

    async def delete_policy(self, policy_id: str) -> None:
        """Delete a policy and its alert groups (its deliveries stay in the log)."""
        if _unstorable(policy_id):
            raise NotFound.of("notification policy", policy_id)
        await self._db.write(partial(policies.delete, policy_id=policy_id))

    async def route_events(self, now_us: int, limit: int, router: Router) -> int:
        """Route up to ``limit`` events stored after the routing cursor; return how many."""
        routed, later = await self._db.write(
            partial(alerting.route, now_us=now_us, limit=limit, router=router)
        )
        if later:
            asyncio.get_running_loop().call_later(ROUTE_AGAIN_S, self._on_events)
        return routed

    async def flush_groups(self, now_us: int, limit: int, composer: Composer) -> int:
        """Compose the messages of up to ``limit`` due groups; return how many were due."""
        return await self._db.write(
            partial(alerting.flush, now_us=now_us, limit=limit, composer=composer)
        )

    async def next_due(self) -> int | None:
        """When a group or a delivery is next due (µs), if ever."""
        return await self._db.read(alerting.next_due)

    async def add_delivery(self, new: NewDelivery, attempt: AttemptRecord | None = None) -> None:
        """Store a message to send now, or one already attempted (with that attempt)."""
        await self._db.write(partial(deliveries.add, new=new, attempt=attempt))

    async def claim_deliveries(self, now_us: int, lease_us: int, limit: int) -> list[DeliveryJob]:
        """Up to ``limit`` due deliveries, each leased for one attempt."""
        return await self._db.write(
            partial(
                deliveries.claim,
                now_us=now_us,
                lease_us=lease_us,
                limit=limit,
                claimer=self.replica,
            )
        )

    async def release_claims(self, now_us: int) -> int:
        """Make every claimed delivery due now (on acquiring the lease: their holder is gone)."""
        released = await self._db.write(partial(deliveries.release_claims, now_us=now_us))
        if released:
            log.info("%d notification(s) claimed by a former replica are due again", released)
            self._stored_events()
        return released

    async def record_attempt(self, attempt: AttemptRecord) -> None:
        """Log an attempt and set its delivery's state."""
        await self._db.write(partial(deliveries.record, attempt=attempt))

    async def get_delivery(self, delivery_id: str) -> NotificationDelivery:
        """One delivery with its attempts."""
        if _unstorable(delivery_id):
            raise NotFound.of("notification delivery", delivery_id)
        return await self._db.read(partial(deliveries.get, delivery_id=delivery_id), snapshot=True)

    async def list_deliveries(self, query: DeliveryFilter) -> list[NotificationDelivery]:
        """Deliveries matching ``query``, newest first, with their attempts."""
        if _unstorable(*_filters(query)):
            return []
        return await self._db.read(partial(deliveries.page, query=query), snapshot=True)

    async def add_windows(
        self, windows: Sequence[StoredWindow], associations: Sequence[StoredAssociation]
    ) -> list[str]:
        """Store the windows whose id is new, with their associations; return the new ids."""
        return await self._db.write(
            partial(monitoring.add, windows=windows, associations=associations)
        )

    async def window_bodies(self, deployment_id: str, from_us: int, to_us: int) -> list[str]:
        """The deployment's window bodies (JSON) starting in the range: raw, then hourly."""
        if _unstorable(deployment_id):
            return []
        return await self._db.read(
            partial(monitoring.bodies, deployment_id=deployment_id, from_us=from_us, to_us=to_us),
            snapshot=True,
        )

    async def roll_up_windows(self, before_us: int, limit: int, merge: WindowMerge) -> int:
        """Add up to ``limit`` windows older than ``before_us`` into their hour; return how many."""
        return await self._db.write(
            partial(monitoring.roll_up, before_us=before_us, limit=limit, merge=merge)
        )

    async def purge_statistics(self, now_us: int, default_days: int, limit: int) -> int:
        """Remove up to ``limit`` rows per statistics table older than the event retention."""
        return await self._db.write(
            partial(monitoring.purge, now_us=now_us, default_days=default_days, limit=limit)
        )

    async def monitoring_state(self, deployment_id: str) -> MonitoringState:
        """The deployment's recorded drift status and last retraining trigger."""
        if _unstorable(deployment_id):
            return MonitoringState()
        return await self._db.read(partial(monitoring.state, deployment_id=deployment_id))

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
        return await self._db.write(
            partial(change, status=status, detail=detail, event=event), after=self._events_if
        )

    async def claim_retraining(self, deployment_id: str, now_us: int, cooldown_us: int) -> bool:
        """Note a retraining trigger now unless one was within ``cooldown_us``; tell if noted."""
        claim = partial(monitoring.claim_retraining, deployment_id=deployment_id)
        return await self._db.write(partial(claim, now_us=now_us, cooldown_us=cooldown_us))

    async def record_actuals(self, deployment_id: str, actuals: Sequence[tuple[str, str]]) -> int:
        """Store actuals (association id, JSON value, ids distinct) of known associations; count."""
        return await self._db.write(
            partial(monitoring.record_actuals, deployment_id=deployment_id, actuals=actuals)
        )

    async def joined_actuals(
        self, deployment_id: str, from_us: int, to_us: int
    ) -> list[JoinedActual]:
        """Predictions with their actuals, of windows starting in ``[from_us, to_us)``."""
        if _unstorable(deployment_id):
            return []
        return await self._db.read(
            partial(monitoring.joined, deployment_id=deployment_id, from_us=from_us, to_us=to_us)
        )
