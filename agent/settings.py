"""The agent's one settings class, and where its values come from.

Precedence, highest first: command-line flags, environment variables
(``PILOTHOUSE_…``, nested groups with ``__``: ``PILOTHOUSE_ACTIONS__TIMEOUT_S``),
the YAML config file (``--config``), then the defaults below. Every field is
documented here and listed in the README. A wrong value is refused at start
with a :class:`~agent.errors.ConfigError` naming the field, the value and what
was expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from agent.errors import ConfigError
from agent.model.vocabulary import OrphanPolicy

_config_file: ContextVar[Path | None] = ContextVar("pilothouse_config_file", default=None)


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class IntakeSettings(_Group):
    """Where desired state comes from in standalone mode."""

    desired_state_file: Path | None = None
    """YAML or JSON document listing the PE's deployments; re-read when it changes."""
    poll_interval_s: float = Field(default=1.0, gt=0, le=3600)
    """How often the file is checked for changes (a cheap stat)."""


class HubLinkSettings(_Group):
    """The agent's link to a hub; without ``url`` the agent runs standalone."""

    url: str | None = None
    """Base URL of the hub, e.g. ``http://127.0.0.1:8700``; enables hub mode."""
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


class ActionSettings(_Group):
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
    """Delay before an errored deployment is tried again (doubles up to backoff_max_s)."""


class WorkerSettings(_Group):
    """Per-deployment workers."""

    idle_timeout_s: float = Field(default=60.0, gt=0)
    """A worker with nothing to do for this long is retired (its deployment's state is kept)."""


class HealthSettings(_Group):
    """The health reporter and heartbeat."""

    interval_s: float = Field(default=30.0, gt=0)
    """How often every deployment's and the PE's status is checked."""
    concurrency: int = Field(default=32, ge=1, le=10_000)
    """Status checks running at once."""
    heartbeat_interval_s: float = Field(default=15.0, gt=0)
    """How often the agent reports that it is alive."""


class SupervisorSettings(_Group):
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


class ShutdownSettings(_Group):
    """Stopping the agent."""

    grace_period_s: float = Field(default=30.0, ge=0)
    """How long in-flight actions may run on after a stop is asked for, before cancellation."""


class ReconcileSettings(_Group):
    """Comparing what runs with what is desired, at start."""

    orphans: OrphanPolicy = OrphanPolicy.STOP
    """What to do with a running deployment that nothing desires: adopt, stop or leave."""


class HttpSettings(_Group):
    """The optional local endpoint with ``/healthz`` and ``/metrics``."""

    enabled: bool = False
    """Serve the endpoint."""
    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = Field(default=8701, ge=0, le=65535)
    """Port to listen on (0 picks a free one)."""


class LogSettings(_Group):
    """Structured logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level written."""
    format: Literal["text", "json"] = "text"
    """``json`` writes one JSON object a line, for log shippers."""


class LayeredSettings(BaseSettings):
    """Base of each process's settings class: flags > environment > YAML file > defaults."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init), then environment, then the YAML file."""
        return (init_settings, env_settings, _YamlFileSource(settings_cls))

    @classmethod
    def load(
        cls, config_file: Path | None = None, overrides: Mapping[str, Any] | None = None
    ) -> Self:
        """Build settings from every source, or raise ``ConfigError`` listing each problem."""
        token = _config_file.set(config_file)
        try:
            settings = cls(**dict(overrides or {}))
        except ValidationError as exc:
            raise ConfigError(explain(exc), source=_source_name(config_file)) from None
        finally:
            _config_file.reset(token)
        settings.check()
        return settings

    def check(self) -> None:
        """Checks that span fields or touch the outside world; raise ``ConfigError``."""


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
    """Where the agent keeps its files (event log, heartbeat, plugin state)."""
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
    log: LogSettings = Field(default_factory=LogSettings)
    """Structured logging."""

    @property
    def event_log_path(self) -> Path:
        """The event log's path, resolved against the state directory."""
        return self.event_log or self.state_dir / "events.jsonl"


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the YAML config file named by :meth:`LayeredSettings.load`."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is overridden; never asked per field

    def __call__(self) -> dict[str, Any]:
        path = _config_file.get()
        if path is None:
            return {}
        return read_yaml_mapping(path)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping, or raise ``ConfigError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror}"], source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"cannot read {path}: not UTF-8 text ({exc.reason})"], source=str(path)
        ) from None
    try:
        data = yaml.load(text, Loader=_loader())
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], source=str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            [f"expected a mapping at the top level, got {type(data).__name__}"], source=str(path)
        )
    return data


def _loader() -> type[yaml.SafeLoader]:
    loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return loader


def explain(exc: ValidationError) -> list[str]:
    """Turn pydantic's errors into one line each: field, value given, what was expected."""
    problems = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "missing":
            problems.append(f"{where}: required, but not given")
            continue
        msg = err["msg"]
        problems.append(f"{where}: got {err.get('input')!r}; {msg[:1].lower()}{msg[1:]}")
    return problems


def _source_name(config_file: Path | None) -> str:
    return f"configuration ({config_file})" if config_file else "configuration"


def reference(
    model: type[BaseModel] = AgentSettings, prefix: str = ""
) -> list[tuple[str, str, str]]:
    """Every leaf setting as (dotted name, default, description), for docs and ``--help``."""
    rows: list[tuple[str, str, str]] = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows.extend(reference(ann, f"{prefix}{name}."))
            continue
        default = info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]
        shown = getattr(default, "value", default)
        rows.append(
            (f"{prefix}{name}", "" if shown is None else str(shown), info.description or "")
        )
    return rows
