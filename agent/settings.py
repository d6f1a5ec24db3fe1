"""The agent's one settings class, and where its values come from.

Precedence, highest first: command-line flags, environment variables
(``PILOTHOUSE_…``, nested groups with ``__``: ``PILOTHOUSE_ACTIONS__TIMEOUT_S``),
the YAML config file (``--config``), then the defaults below. Every field is
documented here and listed in the README. A wrong value is refused at start
with a :class:`~pilothouse.foundation.errors.ConfigError` naming the field, the value and what
was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from pilothouse.foundation import settings
from pilothouse.foundation.aio.supervisor import RestartPolicy
from pilothouse.foundation.domain.vocabulary import OrphanPolicy
from pilothouse.foundation.settings import LayeredSettings, LogSettings, SettingsGroup


class IntakeSettings(SettingsGroup):
    """Where desired state comes from in standalone mode."""

    desired_state_file: Path | None = None
    """YAML or JSON document listing the PE's deployments; re-read when it changes."""
    poll_interval_s: float = Field(default=1.0, gt=0, le=3600)
    """How often the file is checked for changes (a cheap stat)."""


class HubLinkSettings(SettingsGroup):
    """The agent's link to a hub; without ``url`` the agent runs standalone."""

    url: str | None = None
    """Base URL of the hub, e.g. ``http://127.0.0.1:8700``; replicas comma-separated; hub mode."""
    token: SecretStr | None = None
    """Agent token for this PE (``POST /api/v1/prediction-environments/{id}/agent-tokens``)."""
    poll_interval_s: float = Field(default=10.0, gt=0)
    """Polling period of the desired state while the live (SSE) stream is unavailable."""
    reconnect_backoff_max_s: float = Field(default=30.0, gt=0)
    """Upper bound of the delay between reconnection attempts."""
    request_timeout_s: float = Field(default=30.0, gt=0)
    """Time budget of one request to the hub."""
    outbox_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024 * 1024)
    """Disk the event outbox may use while the hub is unreachable."""
    batch_size: int = Field(default=500, ge=1, le=5000)
    """Events per POST to the hub."""

    @property
    def urls(self) -> list[str]:
        """Every replica named by ``url``, in the order they are tried."""
        return [part.strip() for part in (self.url or "").split(",") if part.strip()]


class ActionSettings(SettingsGroup):
    """How plugin actions are run."""

    timeout_s: float = Field(default=300.0, gt=0)
    """Time budget of one attempt of one action."""
    max_attempts: int = Field(default=4, ge=1, le=100)
    """Attempts of an action that keeps failing temporarily, before the deployment errors."""
    backoff_initial_s: float = Field(default=1.0, ge=0)
    """First retry delay; doubles each attempt, with jitter."""
    backoff_max_s: float = Field(default=60.0, ge=0)
    """Upper bound of a retry delay."""
    max_concurrent: int = Field(default=64, ge=1, le=100_000)
    """Actions running at once across all deployments."""
    errored_retry_s: float = Field(default=30.0, ge=0)
    """Delay before an errored deployment is retried (doubles up to backoff_max_s, with jitter)."""


class WorkerSettings(SettingsGroup):
    """Per-deployment workers."""

    idle_timeout_s: float = Field(default=60.0, gt=0)
    """A worker with nothing to do for this long is retired (its deployment's state is kept)."""


class HealthSettings(SettingsGroup):
    """The health reporter and heartbeat."""

    interval_s: float = Field(default=30.0, gt=0)
    """How often every deployment's and the PE's status is checked."""
    concurrency: int = Field(default=32, ge=1, le=10_000)
    """Status checks running at once."""
    heartbeat_interval_s: float = Field(default=15.0, gt=0)
    """How often the agent reports that it is alive."""


class SupervisorSettings(SettingsGroup):
    """Restarting failed tasks, and giving up."""

    restart_backoff_initial_s: float = Field(default=0.5, ge=0)
    """Delay before the first restart of a failed task; doubles, with jitter."""
    restart_backoff_max_s: float = Field(default=30.0, ge=0)
    """Upper bound of the restart delay."""
    crash_loop_failures: int = Field(default=5, ge=1)
    """This many failures of one task within the window is a crash loop: the agent exits."""
    crash_loop_window_s: float = Field(default=60.0, gt=0)
    """The crash-loop window."""
    plugin_ready_timeout_s: float = Field(default=300.0, gt=0)
    """How long the plugin may stay 'not ready' at start before the agent gives up (exit 1)."""

    def policy(self) -> RestartPolicy:
        """These settings as the supervisor's restart policy."""
        return RestartPolicy(
            self.restart_backoff_initial_s,
            self.restart_backoff_max_s,
            self.crash_loop_failures,
            self.crash_loop_window_s,
        )


class ShutdownSettings(SettingsGroup):
    """Stopping the agent."""

    grace_period_s: float = Field(default=30.0, ge=0)
    """How long in-flight actions may run on after a stop is asked for, before cancellation."""


class ReconcileSettings(SettingsGroup):
    """Comparing what runs with what is desired, at start."""

    orphans: OrphanPolicy = OrphanPolicy.STOP
    """What to do with a running deployment that nothing desires: adopt, stop or leave."""


class HttpSettings(SettingsGroup):
    """The optional local endpoint with ``/healthz`` and ``/metrics``."""

    enabled: bool = False
    """Serve the endpoint."""
    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = Field(default=8701, ge=0, le=65535)
    """Port to listen on (0 picks a free one)."""


class MonitoringSettings(SettingsGroup):
    """Prediction statistics relayed to the hub, and the health-gated rollback guard."""

    enabled: bool = True
    """Read the prediction servers' statistics (windows to the hub; the rollback guard)."""
    interval_s: float = Field(default=60.0, gt=0)
    """How often each deployment's statistics are read and cut into a window for the hub."""
    guard_poll_s: float = Field(default=2.0, gt=0)
    """How often a deployment under a rollback guard is read (the guard acts within seconds)."""
    concurrency: int = Field(default=16, ge=1, le=10_000)
    """Statistics readings running at once."""
    batch_windows: int = Field(default=200, ge=1, le=500)
    """Windows per upload to the hub (``POST /api/v1/agent/monitoring``)."""
    store_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024 * 1024)
    """Disk the windows waiting for the hub may use; past it the oldest are dropped."""


class AgentSettings(LayeredSettings):
    """Every setting of one agent process."""

    model_config = SettingsConfigDict(
        env_prefix="PILOTHOUSE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    prediction_environment: str = Field(default="local", pattern=r"^[A-Za-z0-9][\w.-]{0,127}$")
    """Id of the prediction environment this agent manages."""
    plugin: str = "test"
    """Name of the plugin that drives the infrastructure (see ``pilothouse plugins``)."""
    plugin_settings: dict[str, Any] = Field(default_factory=dict)
    """Settings handed to the plugin as they are; each plugin documents its own."""
    state_dir: Path = Path(".pilothouse/agent")
    """Where the agent keeps its files (event log, heartbeat, action journal, plugin state)."""
    event_log: Path | None = None
    """Append-only JSON-lines event log; default ``<state_dir>/events.jsonl``."""
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    """Standalone desired-state file."""
    hub: HubLinkSettings = Field(default_factory=HubLinkSettings)
    """Link to a hub (hub mode)."""
    actions: ActionSettings = Field(default_factory=ActionSettings)
    """Plugin actions: timeouts, retries, concurrency."""
    workers: WorkerSettings = Field(default_factory=WorkerSettings)
    """Per-deployment workers."""
    health: HealthSettings = Field(default_factory=HealthSettings)
    """Health checks and heartbeat."""
    supervisor: SupervisorSettings = Field(default_factory=SupervisorSettings)
    """Task restarts and crash loops."""
    shutdown: ShutdownSettings = Field(default_factory=ShutdownSettings)
    """Clean shutdown."""
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)
    """Reconcile at start."""
    http: HttpSettings = Field(default_factory=HttpSettings)
    """Local /healthz and /metrics endpoint."""
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    """Statistics relay and automatic rollback."""
    log: LogSettings = Field(default_factory=LogSettings)
    """Structured logging."""

    @property
    def event_log_path(self) -> Path:
        """The event log's path, resolved against the state directory."""
        return self.event_log or self.state_dir / "events.jsonl"


def reference(
    model: type[BaseModel] = AgentSettings, prefix: str = ""
) -> list[tuple[str, str, str]]:
    """Every leaf setting of the agent as (dotted name, default, description)."""
    return settings.reference(model, prefix)
