"""The store: everything the hub keeps, behind one typed interface.

Handlers and services speak only to :class:`Store`; SQLite implements it today
(:mod:`pilothouse.hub.store.sqlite.store`) and a PostgreSQL backend can implement it
tomorrow without touching them. The contract every backend keeps:

* every method is a coroutine and never blocks the event loop;
* each write method is one transaction: it happens entirely or not at all;
* a write that changes a PE's desired state appends a row to its change log
  (``seq`` grows across the hub) and, once committed, calls the ``on_change``
  callback given to the backend with the PE's id (watch streams wake on it);
* a write that stores events calls the ``on_events`` callback given to the
  backend once committed (the notification dispatcher wakes on it);
* missing things raise :class:`~pilothouse.hub.errors.NotFound`, taken names
  :class:`~pilothouse.hub.errors.Conflict`; nothing else of the backend's leaks out.

Callbacks passed to write methods (``change`` of :meth:`Store.update_deployment`,
the event factories, the notification router and composer) are pure functions:
the backend may run them on another thread, inside the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

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

DeploymentChange = Callable[[DeploymentRecord], tuple[DeploymentRecord, EventIn]]
"""Turns the stored deployment into its next version and the event recording why."""
ChannelChange = Callable[[ChannelRecord], ChannelRecord]
"""Turns a stored channel into its next version."""
PolicyChange = Callable[[NotificationPolicy], NotificationPolicy]
"""Turns a stored policy into its next version."""


class Store(Protocol):
    """Persistent state of the hub."""

    async def close(self) -> None:
        """Finish pending work and release every connection."""

    async def ping(self) -> None:
        """Raise unless the database answers a query."""

    # --- prediction environments and their agents -------------------------------

    async def add_environment(self, env: PredictionEnvironment) -> None:
        """Store a new PE; ``Conflict`` if its name is taken."""

    async def get_environment(self, pe_id: str) -> PredictionEnvironment:
        """One PE, with what is known of its agent."""

    async def list_environments(self, page: PageQuery) -> list[PredictionEnvironment]:
        """PEs, newest first."""

    async def known_environments(self, ids: Collection[str]) -> set[str]:
        """Which of ``ids`` are registered PEs."""

    async def add_agent_token(
        self,
        token_id: str,
        pe_id: str,
        token_sha256: str,
        created_us: int,
        kind: TokenKind = "agent",
    ) -> None:
        """Store the hash of a new token of ``pe_id`` (an agent token, or a package token)."""

    async def environment_for_token(self, token_sha256: str) -> tuple[str, str, TokenKind] | None:
        """The id, PE and kind of the live (not revoked) token with this hash, if any."""

    async def token_live(self, token_id: str) -> bool:
        """Whether an agent token exists and is not revoked."""

    async def list_agent_tokens(
        self, pe_id: str, page: PageQuery, kind: TokenKind = "agent"
    ) -> list[AgentTokenInfo]:
        """The PE's tokens of ``kind``, revoked ones too, newest first; ``NotFound`` for the PE."""

    async def revoke_agent_token(
        self, pe_id: str, token_id: str, at_us: int, kind: TokenKind = "agent"
    ) -> AgentTokenInfo:
        """Revoke one of the PE's tokens of ``kind`` (idempotent); ``NotFound`` if not the PE's."""

    async def environment_uses_package(self, pe_id: str, package_id: str) -> bool:
        """Whether a live deployment of ``pe_id`` wants or runs ``package_id``."""

    async def deployment_environments(self, ids: Collection[str]) -> dict[str, str]:
        """The PE of each of ``ids`` that is a deployment, deleted ones included."""

    async def record_heartbeat(
        self, pe_id: str, at_us: int, info: dict[str, Any], online: Callable[[], EventIn]
    ) -> bool:
        """Note a heartbeat; if the agent was not online, mark it and store ``online()``."""

    async def mark_offline(self, cutoff_us: int, offline: Callable[[str], EventIn]) -> list[str]:
        """Mark offline every online agent silent since before ``cutoff_us``; store events."""

    async def set_management_agent(
        self, pe_id: str, enabled: bool, at_us: int, event: Callable[[bool], EventIn]
    ) -> bool:
        """Turn the PE's management agent on or off; if that changed it, store ``event(enabled)``.

        While off, what the PE's agent reads (desired state, revision, replay)
        stays as it was when it was turned off; a change of the PE when turned on.
        """

    # --- model packages ---------------------------------------------------------

    async def add_package(self, package: ModelPackage) -> tuple[ModelPackage, bool]:
        """Store a package; with the same sha256 already stored, return that one and False."""

    async def get_package(self, package_id: str) -> ModelPackage:
        """One model package."""

    async def package_by_sha256(self, sha256: str) -> ModelPackage | None:
        """The package with this content, if stored."""

    async def list_packages(self, page: PageQuery) -> list[ModelPackage]:
        """Model packages, newest first."""

    async def known_packages(self, ids: Collection[str]) -> set[str]:
        """Which of ``ids`` are stored model packages."""

    # --- deployments and the desired state --------------------------------------

    async def add_deployment(self, record: DeploymentRecord, event: EventIn) -> None:
        """Store a new deployment (a change of its PE) and the event recording it."""

    async def update_deployment(
        self, deployment_id: str, change: DeploymentChange
    ) -> DeploymentRecord:
        """Apply ``change`` to a live deployment atomically; a change of its PE."""

    async def get_deployment(self, deployment_id: str) -> DeploymentRecord:
        """A live deployment (deleted ones are not found)."""

    async def list_deployments(self, pe_id: str | None, page: PageQuery) -> list[DeploymentRecord]:
        """Live deployments, newest first, optionally of one PE."""

    async def set_observed(self, deployment_id: str, observed: Observed) -> None:
        """Store what the agent observes, unless it is older than what is stored."""

    async def desired_state(self, pe_id: str) -> tuple[int, list[DesiredDeployment]]:
        """The PE's revision and live deployments, read together."""

    async def revision(self, pe_id: str) -> int:
        """The PE's latest change number (0 before its first change)."""

    async def replay(self, pe_id: str, after: int) -> Replay | None:
        """Each deployment's latest change after revision ``after``; None if it cannot be."""

    # --- events -----------------------------------------------------------------

    async def add_events(self, events: Sequence[EventIn]) -> int:
        """Store the events not stored yet (by id); return how many were new."""

    async def list_events(self, query: EventFilter) -> list[EventOut]:
        """Events matching ``query``, newest first (time, then id)."""

    async def event_snapshot(self, query: EventFilter) -> tuple[list[EventOut], int]:
        """Events matching ``query``, newest first, and the ingest position they were read at."""

    async def tail_events(self, after: int, query: EventFilter, scan: int) -> TailChunk:
        """Events matching ``query`` stored after position ``after`` (``scan`` rows at most)."""

    async def scan_events(self, query: EventFilter, fmt: ExportFormat) -> ExportChunk:
        """Up to ``query.limit`` events after ``query.after``, newest first, rendered as ``fmt``.

        Runs apart from the short reads of API requests; ``last`` is None when done.
        """

    # --- retention --------------------------------------------------------------

    async def retention(self) -> RetentionState:
        """The retention set through the API (if any) and the last purge."""

    async def set_retention(self, days: int, at_us: int) -> RetentionState:
        """Set the retention."""

    async def purge_events(self, now_us: int, default_days: int, limit: int) -> int:
        """Remove up to ``limit`` events older than the retention (one transaction)."""

    async def record_purge(self, at_us: int, removed: int, events: Sequence[EventIn]) -> None:
        """Note a finished purge and store the events recording it."""

    # --- notification channels and policies -------------------------------------

    async def add_channel(self, record: ChannelRecord) -> None:
        """Store a new channel; ``Conflict`` if its name is taken."""

    async def get_channel(self, channel_id: str) -> ChannelRecord:
        """One channel, with its sealed URL and secret."""

    async def list_channels(self, page: PageQuery) -> list[NotificationChannel]:
        """Channels, newest first."""

    async def update_channel(self, channel_id: str, change: ChannelChange) -> ChannelRecord:
        """Apply ``change`` to a channel atomically."""

    async def delete_channel(self, channel_id: str) -> None:
        """Delete a channel; ``Conflict`` while a policy sends to it."""

    async def add_policy(self, policy: NotificationPolicy) -> None:
        """Store a new policy; ``NotFound`` naming ``channel_id`` if its channel is unknown."""

    async def get_policy(self, policy_id: str) -> NotificationPolicy:
        """One policy."""

    async def list_policies(self, page: PageQuery) -> list[NotificationPolicy]:
        """Policies, newest first."""

    async def update_policy(self, policy_id: str, change: PolicyChange) -> NotificationPolicy:
        """Apply ``change`` to a policy atomically; disabling it forgets its alert groups."""

    async def delete_policy(self, policy_id: str) -> None:
        """Delete a policy and its alert groups (its deliveries stay in the log)."""

    # --- alert groups and deliveries --------------------------------------------

    async def route_events(self, now_us: int, limit: int, router: Router) -> int:
        """Route up to ``limit`` events stored after the routing cursor; return how many."""

    async def flush_groups(self, now_us: int, limit: int, composer: Composer) -> int:
        """Compose the messages of up to ``limit`` due groups; return how many were due."""

    async def next_due(self) -> int | None:
        """When a group or a delivery is next due (µs), if ever."""

    async def add_delivery(self, new: NewDelivery, attempt: AttemptRecord | None = None) -> None:
        """Store a message to send now, or one already attempted (with that attempt)."""

    async def claim_deliveries(self, now_us: int, lease_us: int, limit: int) -> list[DeliveryJob]:
        """Up to ``limit`` due deliveries, each leased for one attempt."""

    async def record_attempt(self, attempt: AttemptRecord) -> None:
        """Log an attempt and set its delivery's state."""

    async def get_delivery(self, delivery_id: str) -> NotificationDelivery:
        """One delivery with its attempts."""

    async def list_deliveries(self, query: DeliveryFilter) -> list[NotificationDelivery]:
        """Deliveries matching ``query``, newest first, with their attempts."""

    # --- prediction statistics --------------------------------------------------

    async def add_windows(
        self, windows: Sequence[StoredWindow], associations: Sequence[StoredAssociation]
    ) -> list[str]:
        """Store the windows whose id is new, with their associations; return the new ids."""

    async def window_bodies(self, deployment_id: str, from_us: int, to_us: int) -> list[str]:
        """The deployment's window bodies (JSON) starting in the range: raw, then hourly rollups.

        An hourly rollup is returned whole when its hour begins in
        ``[hour of from_us, to_us)``.
        """

    async def roll_up_windows(self, before_us: int, limit: int, merge: WindowMerge) -> int:
        """Add up to ``limit`` windows older than ``before_us`` into their hour; return how many."""

    async def purge_statistics(self, now_us: int, default_days: int, limit: int) -> int:
        """Remove up to ``limit`` rows per statistics table older than the event retention."""

    async def monitoring_state(self, deployment_id: str) -> MonitoringState:
        """The deployment's recorded drift status and last retraining trigger."""

    async def set_drift(
        self,
        deployment_id: str,
        expected: Status,
        status: Status,
        detail: dict[str, object],
        event: EventIn,
    ) -> bool:
        """Record a new drift status with its event, if it is still ``expected`` (else False)."""

    async def claim_retraining(self, deployment_id: str, now_us: int, cooldown_us: int) -> bool:
        """Note a retraining trigger now unless one was within ``cooldown_us``; tell if noted."""

    async def record_actuals(self, deployment_id: str, actuals: Sequence[tuple[str, str]]) -> int:
        """Store actuals (association id, JSON value, ids distinct) of known associations; count."""

    async def joined_actuals(
        self, deployment_id: str, from_us: int, to_us: int
    ) -> list[JoinedActual]:
        """Predictions with their actuals, of windows starting in ``[from_us, to_us)``."""
