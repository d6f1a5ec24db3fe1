"""What the store hands back besides the API's own models.

Where a stored thing has exactly the shape the API shows (a prediction
environment, a model package, an event) the store returns the API model
itself; these records are for what the service layer still composes: a
deployment with its tombstone and per-source health, a replay of changes, the
filters of an event query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import Source, Status
from pilothouse.hub.api.schemas import (
    AttemptOutcome,
    ChannelType,
    DeliveryKind,
    DeliveryState,
    EventOut,
    NotificationChannel,
    NotificationPolicy,
    Observed,
)


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """The latest non-informational status one source reported for one deployment."""

    source: Source
    status: Status
    message: str
    event_id: str
    time_us: int
    seq: int = 0
    """When the hub stored the event (its ingest order): what "latest" means."""


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    """A deployment as stored: its desired spec (with generation), what was observed, health."""

    desired: DesiredDeployment
    prediction_environment_id: str
    observed: Observed
    created_at: datetime
    updated_at: datetime
    deleted: bool = False
    health: tuple[SourceStatus, ...] = ()
    last_event_us: int | None = None
    """When its latest event happened (µs), if it has any."""


@dataclass(frozen=True, slots=True)
class Change:
    """One deployment's latest change after some revision; ``desired`` None: removed."""

    seq: int
    deployment_id: str
    generation: int
    desired: DesiredDeployment | None


@dataclass(frozen=True, slots=True)
class Replay:
    """What a watch stream must send to catch up from ``after``."""

    revision: int
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a newest-first page ends: its last item's time (µs) and id."""

    time_us: int
    id: str


TokenKind = Literal["agent", "package"]
"""An agent token speaks for its PE's agent; a package token only downloads the archives of
the model packages the PE's deployments use (see :mod:`pilothouse.hub.service.auth`)."""


@dataclass(frozen=True, slots=True)
class PageQuery:
    """A page of a list ordered by creation, newest first."""

    limit: int
    after: Cursor | None = None


@dataclass(frozen=True, slots=True)
class EventFilter:
    """The filters of ``GET /events``; ``match`` is an FTS5 query (already quoted)."""

    limit: int
    prediction_environment_id: str | None = None
    deployment_id: str | None = None
    status: Status | None = None
    type: str | None = None
    source: Source | None = None
    since_us: int | None = None
    until_us: int | None = None
    match: str | None = None
    after: Cursor | None = None


@dataclass(frozen=True, slots=True)
class TailChunk:
    """Events of a live stream stored after its position, and the position looked at."""

    events: tuple[tuple[int, EventOut], ...]
    """Each matching event with its ingest position, in the order stored."""
    last: int
    """The ingest position (``seq``) the stream has looked at, matching or not."""
    more: bool = False
    """Whether the scan stopped at its bound: more was stored after ``last``."""


# --- export ---------------------------------------------------------------------

EXPORT_COLUMNS = (
    "id",
    "time",
    "prediction_environment_id",
    "deployment_id",
    "source",
    "type",
    "status",
    "message",
    "data",
)
"""The columns of an export, in order (CSV header; the keys of each JSON line)."""


@dataclass(frozen=True, slots=True)
class ExportChunk:
    """Rendered events (lines of CSV or JSON) and the cursor after the last of them."""

    data: bytes
    count: int
    last: Cursor | None
    """None when the scan is complete."""


# --- retention ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetentionState:
    """The retention set through the API (None: the hub setting applies) and the last purge."""

    days: int | None = None
    updated_us: int | None = None
    last_purge_us: int | None = None
    last_purge_removed: int | None = None


# --- notifications --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    """A channel as stored: the API view and its sealed (encrypted) URL and secret."""

    channel: NotificationChannel
    url_sealed: bytes
    secret_sealed: bytes | None


@dataclass(frozen=True, slots=True)
class AlertGroup:
    """What one policy has told about one deployment (or one PE's own events) so far.

    ``key`` is ``d:<deployment id>`` or ``p:<PE id>`` for events without a
    deployment. ``flush_at_us`` is when the group next has something to send
    (its window closes, a repeat is due); None when there is nothing to wait for.
    """

    policy_id: str
    key: str
    prediction_environment_id: str
    deployment_id: str | None
    flush_at_us: int | None = None
    firing: bool = False
    """An incident was notified and has not been resolved."""
    resolving: bool = False
    """The deployment went back to passing; the next flush says so."""
    notified_severity: int = 0
    """Severity of the incident as last notified (escalation skips the repeat interval)."""
    status: Status = Status.UNKNOWN
    """For PE groups: the latest status of the PE's own events."""
    last_sent_us: int | None = None
    last_incident: EventOut | None = None
    """The latest failing or at-risk event, repeated in reminders."""


def group_key(prediction_environment_id: str, deployment_id: str | None) -> str:
    """The alert group key of an event: its deployment, else its PE."""
    return f"d:{deployment_id}" if deployment_id is not None else f"p:{prediction_environment_id}"


@dataclass(frozen=True, slots=True)
class RoutedEvent:
    """An event read after the routing cursor, with its storage sequence number."""

    seq: int
    event: EventOut


@dataclass(frozen=True, slots=True)
class RoutingBatch:
    """Events to route, and what routing them needs, read in the routing transaction."""

    events: list[RoutedEvent]
    policies: list[NotificationPolicy]
    groups: dict[tuple[str, str], AlertGroup]
    health: dict[str, tuple[SourceStatus, ...]]
    now_us: int


@dataclass(frozen=True, slots=True)
class Routed:
    """Groups changed by routing a batch, and the events each now holds for its next message."""

    groups: list[AlertGroup]
    pending: list[tuple[str, str, RoutedEvent]] = field(default_factory=list)
    """``(policy id, group key, event)``."""


Router = Callable[[RoutingBatch], Routed]
"""Decides what a batch of events does to the alert groups (pure; runs in the transaction)."""


@dataclass(frozen=True, slots=True)
class DueGroup:
    """A group whose flush time has come, with everything composing its message needs."""

    group: AlertGroup
    policy: NotificationPolicy
    channel: NotificationChannel | None
    pending: list[EventOut]
    health: tuple[SourceStatus, ...]
    deployment_name: str | None
    deployment_deleted: bool
    environment_name: str | None
    now_us: int


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A message to send."""

    id: str
    channel_id: str
    policy_id: str | None
    kind: DeliveryKind
    status: Status
    prediction_environment_id: str | None
    deployment_id: str | None
    event_ids: list[str]
    body: bytes
    created_us: int
    max_attempts: int | None = None
    """None: the hub setting; 1 for a test message."""


@dataclass(frozen=True, slots=True)
class Flushed:
    """What a flush leaves: the group's next state (None: forget it) and maybe a message."""

    group: AlertGroup | None
    delivery: NewDelivery | None = None


Composer = Callable[[DueGroup], Flushed]
"""Turns a due group into its next state and message (pure; runs in the transaction)."""


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """A message claimed for one attempt, with its channel's sealed URL and secret."""

    id: str
    channel_id: str
    channel_type: ChannelType
    url_sealed: bytes
    secret_sealed: bytes | None
    body: bytes
    kind: DeliveryKind
    attempts: int
    """Attempts made before this one."""
    max_attempts: int | None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """The outcome of one attempt, and when the next one is due (if any)."""

    delivery_id: str
    number: int
    at_us: int
    duration_ms: float
    outcome: AttemptOutcome
    http_status: int | None
    error: str
    next_attempt_us: int | None

    @property
    def state(self) -> DeliveryState:
        """The delivery's state after this attempt."""
        return _STATE_AFTER[self.outcome]


_STATE_AFTER: dict[AttemptOutcome, DeliveryState] = {
    "delivered": "delivered",
    "retry": "pending",
    "failed": "failed",
}


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """The filters of ``GET /notification-deliveries``."""

    limit: int
    channel_id: str | None = None
    policy_id: str | None = None
    deployment_id: str | None = None
    state: DeliveryState | None = None
    kind: DeliveryKind | None = None
    after: Cursor | None = None


# --- prediction statistics --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredWindow:
    """One statistics window as stored: its keys and its JSON (associations left out)."""

    id: str
    deployment_id: str
    package_id: str
    start_us: int
    end_us: int
    body: str


@dataclass(frozen=True, slots=True)
class StoredAssociation:
    """What the champion predicted for one row, kept for joining an actual later."""

    window_id: str
    deployment_id: str
    association_id: str
    package_id: str
    window_start_us: int
    prediction: str
    """The prediction, as JSON."""


@dataclass(frozen=True, slots=True)
class JoinedActual:
    """A stored prediction and the actual posted for it (both as JSON)."""

    package_id: str
    window_start_us: int
    prediction: str
    actual: str


@dataclass(frozen=True, slots=True)
class MonitoringState:
    """A deployment's drift status as last recorded, and its last retraining trigger."""

    drift_status: Status = Status.UNKNOWN
    drift: dict[str, object] = field(default_factory=dict)
    retrained_us: int | None = None


WindowMerge = Callable[[list[str]], str]
"""Adds window bodies (JSON) of one deployment and package into one body (a pure function)."""
