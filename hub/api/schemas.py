"""Request and response bodies of the hub API: the contract with agents, CLI and UI.

JSON is snake_case. Lists are ``{"items": [...], "next_cursor": ...}``. Times
are RFC 3339 in UTC. Every model here is also the source of the OpenAPI
document served at ``/api/v1/openapi.json``, so what a model accepts and what
the document says are the same thing: request bodies are read strictly (no
``false`` for a number, no number for a time), every integer fits the signed
64-bit range SQLite stores, and free-form JSON (event ``data``, plugin
settings) holds only numbers within that range, described by the
``JsonValue`` schema (:data:`JSON_VALUE_SCHEMA`).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
)
from pydantic.json_schema import WithJsonSchema

from pilothouse.foundation.domain.desired import (
    DeploymentSettings,
    DesiredDeployment,
    Integer,
    RollbackRecord,
    integral,
)
from pilothouse.foundation.domain.vocabulary import (
    Action,
    DeploymentState,
    DesiredRun,
    Source,
    Status,
)

NAME = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}$"
ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
CURSOR = r"^-?[0-9]{1,18}\.[A-Za-z0-9._-]{1,128}$"
"""A page cursor (``next_cursor``): the last item's time in µs and its id."""
CURSOR_OR_EMPTY = r"^(-?[0-9]{1,18}\.[A-Za-z0-9._-]{1,128})?$"
PREDICTION_URL = r"^https?://[^\s/?#]+(?:[/?#]\S*)?$"
"""Where a deployment answers: http or https only (a UI links to it)."""
GRPC_TARGET = r"^(dns:///)?([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$"
"""Where a deployment answers gRPC: ``host:port`` (a name, IPv4, or ``[IPv6]``), as
``grpc.insecure_channel`` and ``tritonclient.grpc`` take it."""

T = TypeVar("T")

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX), BeforeValidator(integral)]
"""An integer SQLite and orjson can hold (``3.0`` counts, as in JSON Schema)."""
Count = Annotated[int, Field(ge=0, le=INT64_MAX), BeforeValidator(integral)]
"""A non-negative integer SQLite and orjson can hold (a generation, a revision)."""

JSON_VALUE = "JsonValue"
JSON_VALUE_SCHEMA: dict[str, Any] = {
    "description": "Any JSON value whose numbers lie within the signed 64-bit range.",
    "anyOf": [
        {"type": "null"},
        {"type": "boolean"},
        {"type": "string"},
        {"type": "number", "minimum": INT64_MIN, "maximum": INT64_MAX},
        {"type": "array", "items": {"$ref": f"#/components/schemas/{JSON_VALUE}"}},
        {
            "type": "object",
            "additionalProperties": {"$ref": f"#/components/schemas/{JSON_VALUE}"},
        },
    ],
}
"""The OpenAPI schema of one free-form JSON value (a component of the document)."""


def _bounded_numbers(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` unchanged, or ``ValueError`` naming the first number out of range.

    A plain walk instead of a recursive pydantic union: it keeps ingest nearly as
    fast as ``dict[str, Any]`` (the path is worked out only for the error) and
    names the offending value in one message.
    """
    if _fits(value):
        return value
    where, number = _first_outside(value, "")
    raise ValueError(
        f"{where}: {number} is outside the signed 64-bit range [{INT64_MIN}, {INT64_MAX}]"
    )


def _fits(container: dict[str, Any] | list[Any]) -> bool:
    for item in container.values() if isinstance(container, dict) else container:
        kind = type(item)
        if kind is int or kind is float:
            if not INT64_MIN <= item <= INT64_MAX:
                return False
        elif (kind is dict or kind is list) and not _fits(item):
            return False
    return True


def _first_outside(container: dict[str, Any] | list[Any], where: str) -> tuple[str, Any]:
    items = container.items() if isinstance(container, dict) else enumerate(container)
    for key, item in items:
        path = f"{where}.{key}" if where else str(key)
        kind = type(item)
        if (kind is int or kind is float) and not INT64_MIN <= item <= INT64_MAX:
            return path, item
        if (kind is dict or kind is list) and not _fits(item):
            return _first_outside(item, path)
    raise AssertionError("called only when a number is out of range")


JsonObject = Annotated[
    dict[str, Any],
    AfterValidator(_bounded_numbers),
    WithJsonSchema(
        {"type": "object", "additionalProperties": {"$ref": f"#/components/schemas/{JSON_VALUE}"}}
    ),
]
"""A free-form JSON object whose numbers SQLite and orjson can hold."""

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: Any) -> Any:
    """Only RFC 3339 date-times with an offset, parsed (no Unix numbers, no naive times).

    Parsed here, in C (``fromisoformat``): strict validation would take no text
    after a validator, and pydantic's lax parsing would take ``"0.5"``.
    """
    if isinstance(value, datetime):
        return value  # built in code, not read from a request
    try:
        if isinstance(value, str) and _RFC3339.match(value):
            return datetime.fromisoformat(value.upper())
    except ValueError:
        pass  # the right shape, an impossible date (month 13)
    raise ValueError("expected an RFC 3339 date-time with a time zone, e.g. 2026-01-31T12:00:00Z")


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]
"""A time as a request gives it: RFC 3339 with ``Z`` or an offset, exactly as documented."""


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
    plugin_settings: JsonObject = Field(default_factory=dict)


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


class AgentTokenInfo(BaseModel):
    """An agent token as listed: never its secret (the hub keeps only a hash)."""

    id: str
    prediction_environment_id: str
    created_at: datetime
    revoked_at: datetime | None = Field(
        default=None, description="When it was revoked; a revoked token is refused at once."
    )


class PackageToken(AgentToken):
    """A read-only token of one PE, shown only in this answer.

    It may only download the archives of the model packages the PE's deployments use.
    """


class PackageTokenInfo(AgentTokenInfo):
    """A package token as listed: never its secret (the hub keeps only a hash)."""


class Heartbeat(_In):
    """An agent's proof of life."""

    agent_version: str = Field(default="", max_length=200)
    deployments: dict[str, Count] = Field(default_factory=dict)
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
    model_package_id: str = Field(min_length=1)
    challenger_ids: list[str] = Field(default_factory=list)
    settings: DeploymentSettings = Field(default_factory=DeploymentSettings)


_ONLY_REPLACE_TAKES_A_PACKAGE: dict[str, Any] = {
    "oneOf": [
        {
            "properties": {
                "action": {"const": Action.REPLACE_MODEL.value},
                "model_package_id": {"type": "string", "minLength": 1},
            },
            "required": ["action", "model_package_id"],
        },
        {
            "properties": {
                "action": {"enum": [a.value for a in Action if a is not Action.REPLACE_MODEL]},
                "model_package_id": {"type": "null"},
            },
        },
    ]
}


class ActionRequest(_In):
    """Ask for an action; ``model_package_id`` is given for ``replace_model`` and only for it."""

    model_config = ConfigDict(json_schema_extra=_ONLY_REPLACE_TAKES_A_PACKAGE)

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
    rollback: RollbackRecord | None = Field(
        default=None, description="The last rollback, while its champion stands."
    )


class ObservedStatus(_In):
    """What the agent observes (``PUT /deployments/{id}/status``).

    ``generation`` is the desired generation the observation answers; one ahead
    of the deployment's desired generation is refused (409).
    """

    state: DeploymentState
    model_package_id: str | None = None
    prediction_url: str | None = Field(default=None, max_length=2048, pattern=PREDICTION_URL)
    grpc_target: str | None = Field(
        default=None,
        max_length=512,
        pattern=GRPC_TARGET,
        description="Where the deployment answers gRPC (Open Inference Protocol), if it does.",
    )
    generation: Count
    status: Status = Status.UNKNOWN
    message: str = ""


class Observed(BaseModel):
    """What the agent last reported."""

    state: DeploymentState = DeploymentState.UNKNOWN
    model_package_id: str | None = None
    prediction_url: str | None = None
    grpc_target: str | None = Field(
        default=None, description="Where the deployment answers gRPC (host:port), if it does."
    )
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
    """An event as posted by its producer (the id is the producer's ULID).

    ``time`` must lie within the hub's clock-skew allowance of its own clock
    (``events.max_clock_skew_s`` ahead, ``events.max_age_days`` behind); an agent
    token posts only ``source: agent`` events of its own PE and deployments.
    """

    id: str = Field(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")
    time: Timestamp
    prediction_environment_id: str
    deployment_id: str | None = None
    source: Source = Source.AGENT
    type: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$", max_length=128)
    status: Status
    message: str = Field(max_length=10_000)
    data: JsonObject = Field(default_factory=dict)


class WatchEvent(BaseModel):
    """One server-sent event of a watch stream (``GET …/watch``); ``data`` is JSON text."""

    event: Literal["deployment", "removed", "resync"] = Field(
        description="deployment: a DesiredDeployment (its latest generation); removed: "
        "``{id, generation}``; resync: ``{}``, fetch the desired state again."
    )
    data: str
    id: str | None = Field(
        default=None, pattern=r"^[0-9]+$", description="The revision; resume after it."
    )


class EventStreamEvent(BaseModel):
    """One server-sent event of the live event stream (``GET /events/stream``); JSON ``data``."""

    event: Literal["snapshot", "event"] = Field(
        description="snapshot: a page ``{items, next_cursor}`` of the newest matching events, "
        "first; event: one new matching Event."
    )
    data: str
    id: str | None = Field(
        default=None, pattern=r"^[0-9]+$", description="The ingest position; resume after it."
    )


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

    limit: Integer = Field(default=100, ge=1, le=1000, description="Items per page.")
    cursor: str | None = Field(
        default=None,
        pattern=CURSOR_OR_EMPTY,
        description="``next_cursor`` of the previous page; empty: the first page.",
    )


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
    since: Timestamp | None = Field(default=None, description="Events at or after this time.")
    until: Timestamp | None = Field(default=None, description="Events before this time.")
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


_SLACK_TAKES_NO_SECRET: dict[str, Any] = {
    "oneOf": [
        {"properties": {"type": {"const": "slack"}, "secret": {"type": "null"}}},
        {"properties": {"type": {"const": "webhook"}}},
    ]
}


class NotificationChannelCreate(_In):
    """A place messages go: a Slack incoming webhook, or any HTTP endpoint (signed JSON).

    A Slack channel takes no ``secret`` (Slack signs nothing). The URL must not
    point at a loopback, private or link-local address unless the hub setting
    ``notifications.allow_private_targets`` allows it.
    """

    model_config = ConfigDict(json_schema_extra=_SLACK_TAKES_NO_SECRET)

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


FilterId = Annotated[str, Field(min_length=1)]
"""A PE or deployment id in a policy's filter: an empty one could match nothing."""


class NotificationPolicyCreate(_In):
    """Which events go to which channel, grouped per deployment, repeated while failing.

    Every list is a filter (empty: any); all must hold. ``event_types`` entries may
    use ``*`` as a wildcard (``action.*.failed``).
    """

    name: str = Field(pattern=NAME)
    channel_id: str
    statuses: list[Status] = Field(default_factory=list, max_length=5)
    event_types: list[EventTypePattern] = Field(default_factory=list, max_length=100)
    prediction_environment_ids: list[FilterId] = Field(default_factory=list, max_length=1000)
    deployment_ids: list[FilterId] = Field(default_factory=list, max_length=1000)
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
    prediction_environment_ids: list[FilterId] | None = Field(default=None, max_length=1000)
    deployment_ids: list[FilterId] | None = Field(default=None, max_length=1000)
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

    days: Integer = Field(ge=1, le=36_500, description="Events younger than this are never purged.")


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


# --- prediction statistics, rollback, promotion, actuals -----------------------------

MAX_ACTUALS = 100_000
"""Actuals in one ``POST /deployments/{id}/actuals``."""


class StatsBatchResult(BaseModel):
    """What a statistics upload stored: windows new to the hub, and those it had already."""

    accepted: int
    duplicates: int


class MonitoringQuery(_In):
    """The span and resolution of ``GET /deployments/{id}/monitoring``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: Timestamp | None = Field(
        default=None, alias="from", description="Start of the span (default: an hour before to)."
    )
    to: Timestamp | None = Field(default=None, description="End of the span (default: now).")
    step: Annotated[int, Field(ge=1, le=31 * 86_400)] | None = Field(
        default=None,
        description="Seconds per point (default: the span in 60 steps, at least 60 s).",
    )


class ChallengerPoint(BaseModel):
    """How one challenger fared against the champion over a step."""

    package_id: str
    rows: int
    compared: int
    errors: int
    dropped: int
    agreement: float | None = Field(description="Share of rows with the champion's label.")
    mean_abs_difference: float | None = Field(description="Mean |challenger - champion|.")
    latency_p50_s: float | None
    latency_p99_s: float | None


class MonitoringPoint(BaseModel):
    """One step of one package's traffic: counts, latency, drift, challengers, accuracy."""

    start: datetime
    end: datetime
    package_id: str
    requests: int
    rows: int
    client_errors: int
    server_errors: int
    error_rate: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_p99_s: float | None
    drift: dict[str, float] = Field(description="PSI per feature against the baseline.")
    prediction_drift: float | None = Field(description="PSI of the predictions.")
    challengers: list[ChallengerPoint]
    actuals: int = Field(description="Predictions of the step with an actual posted.")
    accuracy: float | None = Field(description="Share of actuals equal to the prediction.")
    mae: float | None = Field(description="Mean absolute error (numeric predictions).")


class DriftView(BaseModel):
    """The deployment's drift status as last recorded (``deployment.drift_changed``)."""

    status: Status
    features: dict[str, float] = Field(description="Features at or past at_risk, with PSI.")
    rows: int | None = None
    package_id: str | None = None


class MonitoringSeries(BaseModel):
    """A deployment's prediction statistics over a span, step by step and package by package."""

    deployment_id: str
    start: datetime
    end: datetime
    step_s: int
    points: list[MonitoringPoint]
    drift: DriftView


class Actual(_In):
    """What really happened for one predicted row."""

    association_id: str = Field(min_length=1, max_length=80, description="``<request_id>:<row>``.")
    value: str | float | bool = Field(description="The true label or value.")


class ActualsUpload(_In):
    """Actuals for predictions the deployment made (``POST /deployments/{id}/actuals``)."""

    actuals: list[Actual] = Field(max_length=MAX_ACTUALS)


class ActualsResult(BaseModel):
    """How many actuals met a stored prediction, and how many named none."""

    matched: int
    unmatched: int


class RollbackRequest(_In):
    """An agent's (or admin's) rollback to record: the champion goes back to ``to``."""

    from_package_id: str = Field(min_length=1, max_length=200)
    to_package_id: str = Field(min_length=1, max_length=200)
    reason: str = Field(max_length=2000)
    figures: dict[str, float | None] = Field(default_factory=dict, max_length=100)


class PromoteRequest(_In):
    """Make one of the deployment's challengers its champion."""

    package_id: str = Field(min_length=1, max_length=200)


ErrorBody.model_rebuild()
ServiceHealthView.model_rebuild()
