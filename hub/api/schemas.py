"""Request and response bodies of the hub API: the contract with agents, CLI and UI.

JSON is snake_case. Lists are ``{"items": [...], "next_cursor": ...}``. Times
are RFC 3339 in UTC. Every model here is also the source of the OpenAPI
document served at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from pilothouse.foundation.domain.desired import DeploymentSettings, DesiredDeployment
from pilothouse.foundation.domain.vocabulary import (
    Action,
    DeploymentState,
    DesiredRun,
    Source,
    Status,
)

NAME = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}$"
ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

T = TypeVar("T")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    """A page of a list, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[T]
    next_cursor: str | None = None


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer."""

    error: str = Field(description="Machine-readable code, e.g. 'validation_error', 'not_found'.")
    message: str = Field(description="What went wrong, for people.")
    fields: list[FieldError] = Field(default_factory=list)


class FieldError(BaseModel):
    """One invalid field of a request."""

    field: str
    message: str
    input: Any = None


# --- prediction environments ---------------------------------------------------


class PredictionEnvironmentCreate(_In):
    """Register a prediction environment."""

    name: str = Field(pattern=NAME)
    platform: Literal["process", "docker", "kubernetes", "command", "test"]
    description: str = Field(default="", max_length=2000)
    plugin_settings: dict[str, Any] = Field(default_factory=dict)


class AgentInfo(BaseModel):
    """What the hub knows of the PE's agent."""

    online: bool
    last_heartbeat_at: datetime | None = None
    info: dict[str, Any] = Field(default_factory=dict)


class PredictionEnvironment(BaseModel):
    """A registered prediction environment."""

    id: str
    name: str
    platform: str
    description: str
    plugin_settings: dict[str, Any]
    created_at: datetime
    agent: AgentInfo
    use_management_agent: bool = Field(
        default=True,
        description="While false, the PE's agent receives no desired-state changes: it keeps "
        "what it had; changes made meanwhile are recorded and reach it once this is true again.",
    )


class PredictionEnvironmentUpdate(_In):
    """Change a prediction environment; fields left out stay as they are."""

    use_management_agent: bool | None = Field(
        default=None, description="Turn the PE's management agent on or off."
    )


class AgentToken(BaseModel):
    """A token scoped to one PE; the secret is shown only in this answer."""

    id: str
    token: str
    prediction_environment_id: str
    created_at: datetime


class Heartbeat(_In):
    """An agent's proof of life."""

    agent_version: str = ""
    deployments: dict[str, int] = Field(default_factory=dict)
    environment_status: Status = Status.UNKNOWN
    tasks: dict[str, bool] = Field(default_factory=dict)


# --- model packages -----------------------------------------------------------


class ModelPackage(BaseModel):
    """A stored, content-addressed model package."""

    id: str
    name: str
    version: str
    format: str
    sha256: str
    size: int
    manifest: dict[str, Any]
    created_at: datetime


# --- deployments --------------------------------------------------------------


class DeploymentCreate(_In):
    """Create a deployment; it is launched as soon as its PE's agent hears of it."""

    name: str = Field(pattern=NAME)
    prediction_environment_id: str
    model_package_id: str
    challenger_ids: list[str] = Field(default_factory=list)
    settings: DeploymentSettings = Field(default_factory=DeploymentSettings)


class ActionRequest(_In):
    """Ask for an action; ``model_package_id`` is required for ``replace_model``."""

    action: Action
    model_package_id: str | None = None
    challenger_ids: list[str] | None = None


class Desired(BaseModel):
    """What the deployment should be."""

    state: DesiredRun
    model_package_id: str
    challenger_ids: list[str]
    settings: DeploymentSettings
    generation: int


class ObservedStatus(_In):
    """What the agent observes (``PUT /deployments/{id}/status``)."""

    state: DeploymentState
    model_package_id: str | None = None
    prediction_url: str | None = None
    generation: int = Field(ge=0)
    status: Status = Status.UNKNOWN
    message: str = ""


class Observed(BaseModel):
    """What the agent last reported."""

    state: DeploymentState = DeploymentState.UNKNOWN
    model_package_id: str | None = None
    prediction_url: str | None = None
    generation: int = 0
    updated_at: datetime | None = None


class ServiceHealth(BaseModel):
    """The deployment's current status by DESIGN.md's rule (the agent's worst report wins)."""

    status: Status = Status.UNKNOWN
    reason: str = ""
    event_id: str | None = None
    source: Source | None = Field(default=None, description="Who reported the deciding status.")


class Deployment(BaseModel):
    """A deployment as the hub knows it."""

    id: str
    name: str
    prediction_environment_id: str
    desired: Desired
    observed: Observed
    service_health: ServiceHealth
    created_at: datetime
    updated_at: datetime
    last_event_at: datetime | None = Field(
        default=None, description="Time of the deployment's latest event."
    )


class ServiceHealthView(ServiceHealth):
    """Service health with the events behind it."""

    deployment_id: str
    recent_events: list[EventOut]


# --- agent channel -------------------------------------------------------------


class DesiredStateSnapshot(BaseModel):
    """Everything a PE's agent must run; ``revision`` resumes the watch stream."""

    prediction_environment_id: str
    revision: int
    deployments: list[DesiredDeployment]


# --- events ------------------------------------------------------------------


class EventIn(_In):
    """An event as posted by its producer (the id is the producer's ULID)."""

    id: str = Field(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")
    time: datetime
    prediction_environment_id: str
    deployment_id: str | None = None
    source: Source = Source.AGENT
    type: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$", max_length=128)
    status: Status
    message: str = Field(max_length=10_000)
    data: dict[str, Any] = Field(default_factory=dict)


class EventBatch(_In):
    """A batch of events; re-posting a batch is harmless (ingest is idempotent by id)."""

    events: list[EventIn] = Field(max_length=5000)


class EventBatchResult(BaseModel):
    """How many events were new."""

    accepted: int
    duplicates: int


class EventOut(BaseModel):
    """A stored event."""

    id: str
    time: datetime
    prediction_environment_id: str
    deployment_id: str | None
    source: Source
    type: str
    status: Status
    message: str
    data: dict[str, Any]


# --- query parameters -------------------------------------------------------


class ListQuery(_In):
    """Paging of a list, newest first."""

    limit: int = Field(default=100, ge=1, le=1000, description="Items per page.")
    cursor: str | None = Field(default=None, description="``next_cursor`` of the previous page.")


class DeploymentListQuery(ListQuery):
    """Filters of ``GET /deployments``."""

    prediction_environment_id: str | None = Field(default=None, description="Only this PE's.")


class EventFilters(_In):
    """Filters of the event list and export; all given filters must hold."""

    prediction_environment_id: str | None = None
    deployment_id: str | None = None
    status: Status | None = None
    type: str | None = Field(default=None, description="Exact event type.")
    source: Source | None = None
    since: datetime | None = Field(default=None, description="Events at or after this time.")
    until: datetime | None = Field(default=None, description="Events before this time.")
    q: str | None = Field(
        default=None,
        max_length=500,
        description="Full-text search over message and data: every word must occur "
        "(``word*`` matches a prefix).",
    )


class EventQuery(ListQuery, EventFilters):
    """Filters of ``GET /events``; all given filters must hold."""


class ExportFormat(StrEnum):
    """How an export is written."""

    CSV = "csv"
    """RFC 4180 comma-separated values with a header line."""
    JSONL = "jsonl"
    """One JSON object a line, exactly as ``GET /events`` shows an event."""


class EventExportQuery(EventFilters):
    """What ``GET /events/export`` writes: the event list's filters, and a format."""

    format: ExportFormat = Field(default=ExportFormat.CSV, description="``csv`` or ``jsonl``.")


class EventStreamQuery(EventFilters):
    """What ``GET /events/stream`` sends: the event list's filters, and a first page."""

    backlog: int = Field(
        default=0,
        ge=0,
        le=1000,
        description="Send the newest this many matching events first, as one ``snapshot``.",
    )
    last_event_id: str | None = Field(
        default=None, description="Position to resume after (no snapshot then)."
    )


class WatchQuery(_In):
    """Where a watch stream resumes (the ``Last-Event-ID`` header wins)."""

    last_event_id: str | None = Field(default=None, description="Revision to resume after.")


# --- notifications -------------------------------------------------------------

URL = r"^https?://[^\s/?#@]+(?:[/?#]\S*)?$"
EVENT_TYPE_PATTERN = r"^[a-z0-9_*]+(\.[a-z0-9_*]+)*$"
ChannelType = Literal["slack", "webhook"]
DeliveryKind = Literal["firing", "repeat", "resolved", "notice", "test"]
DeliveryState = Literal["pending", "delivered", "failed"]
AttemptOutcome = Literal["delivered", "retry", "failed"]
EventTypePattern = Annotated[str, Field(pattern=EVENT_TYPE_PATTERN, max_length=128)]


class NotificationChannelCreate(_In):
    """A place messages go: a Slack incoming webhook, or any HTTP endpoint (signed JSON)."""

    name: str = Field(pattern=NAME)
    type: ChannelType
    url: str = Field(
        max_length=2048,
        pattern=URL,
        description="The Slack incoming-webhook URL, or the endpoint to POST to. Kept encrypted; "
        "never shown in full again.",
    )
    secret: SecretStr | None = Field(
        default=None,
        min_length=16,
        max_length=256,
        description="Webhook only: the HMAC-SHA256 signing secret. Generated (and shown once) "
        "when not given. Kept encrypted; never shown again.",
    )


class NotificationChannelUpdate(_In):
    """Change a channel; fields left out stay as they are."""

    name: str | None = Field(default=None, pattern=NAME)
    url: str | None = Field(default=None, max_length=2048, pattern=URL)
    secret: SecretStr | None = Field(default=None, min_length=16, max_length=256)


class NotificationChannel(BaseModel):
    """A notification channel; its URL is masked and its secret is never shown."""

    id: str
    name: str
    type: ChannelType
    url: str = Field(description="Masked: enough to recognise it, not enough to use it.")
    has_secret: bool
    created_at: datetime
    updated_at: datetime


class NotificationChannelCreated(NotificationChannel):
    """A new channel; a generated signing secret is in this answer only."""

    secret: str | None = Field(
        default=None, description="The generated signing secret (webhook channels without one)."
    )


class NotificationPolicyCreate(_In):
    """Which events go to which channel, grouped per deployment, repeated while failing.

    Every list is a filter (empty: any); all must hold. ``event_types`` entries may
    use ``*`` as a wildcard (``action.*.failed``).
    """

    name: str = Field(pattern=NAME)
    channel_id: str
    statuses: list[Status] = Field(default_factory=list, max_length=5)
    event_types: list[EventTypePattern] = Field(default_factory=list, max_length=100)
    prediction_environment_ids: list[str] = Field(default_factory=list, max_length=1000)
    deployment_ids: list[str] = Field(default_factory=list, max_length=1000)
    group_window_s: float = Field(
        default=30.0,
        ge=0,
        le=86_400,
        description="Events of one deployment arriving within this window become one message.",
    )
    repeat_interval_s: float = Field(
        default=14_400.0,
        ge=1,
        le=30 * 86_400,
        description="A deployment still failing or at risk is notified again at most this often.",
    )
    send_resolved: bool = Field(
        default=True, description="Send a message when the deployment is passing again."
    )
    enabled: bool = True


class NotificationPolicyUpdate(_In):
    """Change a policy; fields left out stay as they are."""

    name: str | None = Field(default=None, pattern=NAME)
    channel_id: str | None = None
    statuses: list[Status] | None = Field(default=None, max_length=5)
    event_types: list[EventTypePattern] | None = Field(default=None, max_length=100)
    prediction_environment_ids: list[str] | None = Field(default=None, max_length=1000)
    deployment_ids: list[str] | None = Field(default=None, max_length=1000)
    group_window_s: float | None = Field(default=None, ge=0, le=86_400)
    repeat_interval_s: float | None = Field(default=None, ge=1, le=30 * 86_400)
    send_resolved: bool | None = None
    enabled: bool | None = None


class NotificationPolicy(BaseModel):
    """A stored notification policy."""

    id: str
    name: str
    channel_id: str
    statuses: list[Status]
    event_types: list[str]
    prediction_environment_ids: list[str]
    deployment_ids: list[str]
    group_window_s: float
    repeat_interval_s: float
    send_resolved: bool
    enabled: bool
    created_at: datetime
    updated_at: datetime


class DeliveryAttempt(BaseModel):
    """One try at sending a message."""

    number: int
    at: datetime
    outcome: AttemptOutcome
    http_status: int | None = None
    error: str = ""
    duration_ms: float


class NotificationDelivery(BaseModel):
    """One message to one channel, and every attempt at sending it."""

    id: str
    channel_id: str
    policy_id: str | None
    kind: DeliveryKind = Field(
        description="firing: new events of an incident; repeat: still failing, nothing new; "
        "resolved: passing again; notice: matching events outside an incident; test."
    )
    status: Status
    prediction_environment_id: str | None
    deployment_id: str | None
    event_ids: list[str]
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    created_at: datetime
    updated_at: datetime
    attempt_log: list[DeliveryAttempt]


class DeliveryQuery(ListQuery):
    """Filters of ``GET /notification-deliveries``."""

    channel_id: str | None = None
    policy_id: str | None = None
    deployment_id: str | None = None
    state: DeliveryState | None = None
    kind: DeliveryKind | None = None


class WebhookMessage(BaseModel):
    """The JSON body POSTed to a webhook channel (signed: ``X-Pilothouse-Signature``)."""

    id: str = Field(description="The delivery id; the same on every retry of this message.")
    kind: DeliveryKind
    status: Status = Field(description="The deployment's status as of this message.")
    summary: str
    policy: dict[str, str] | None = Field(description="``id`` and ``name``; null for a test.")
    prediction_environment_id: str | None
    prediction_environment_name: str | None
    deployment_id: str | None
    deployment_name: str | None
    deployment_url: str | None
    events: list[EventOut]
    omitted_events: int = Field(description="Events of this message left out of ``events``.")
    created_at: datetime


# --- retention ------------------------------------------------------------------


class RetentionUpdate(_In):
    """Set how long events are kept."""

    days: int = Field(ge=1, le=36_500, description="Events younger than this are never purged.")


class Retention(BaseModel):
    """How long events are kept, and what the last purge did."""

    days: int
    source: Literal["default", "api"] = Field(
        description="``default``: the hub setting retention.default_days; ``api``: set by PUT."
    )
    updated_at: datetime | None
    purge_interval_s: float
    last_purge_at: datetime | None
    last_purge_removed: int | None


ErrorBody.model_rebuild()
ServiceHealthView.model_rebuild()
