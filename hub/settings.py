"""The hub's one settings class, and where its values come from.

Precedence, highest first: command-line flags, environment variables
(``PILOTHOUSE_HUB_…``, nested groups joined with ``__``:
``PILOTHOUSE_HUB_LIMITS__MAX_PACKAGE_BYTES``), the YAML config file
(``--config``), then the defaults below. Every field is documented here;
``pilothouse hub settings`` prints them as a table. A wrong value is refused at
start with a :class:`~pilothouse.agent.errors.ConfigError` naming the field, the value
and what was expected, exactly as the agent does it (the YAML reading and the
error wording are the agent's, reused from :mod:`pilothouse.foundation.settings`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from pilothouse.foundation.errors import ConfigError
from pilothouse.foundation.settings import LayeredSettings, LogSettings
from pilothouse.modelpkg.archive import DEFAULT_LIMITS, ArchiveLimits

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
"""How a ``database.url`` naming a PostgreSQL database starts."""
KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class ListenSettings(_Group):
    """Where the API listens."""

    host: str = "127.0.0.1"
    """Address to listen on (``0.0.0.0`` for every interface)."""
    port: int = Field(default=8700, ge=0, le=65535)
    """Port to listen on (0 picks a free one, reported at start)."""


class HttpSettings(_Group):
    """How the API's HTTP server treats slow and idle connections."""

    keepalive_timeout_s: float = Field(default=75.0, gt=0, le=86_400)
    """An idle connection (no request, or a request's headers not all sent) is closed after this."""
    read_timeout_s: float = Field(default=60.0, gt=0, le=86_400)
    """A JSON body must arrive within this, an upload may pause no longer (408 otherwise)."""


class DatabaseSettings(_Group):
    """The database holding PEs, packages, deployments and events."""

    url: str | None = None
    """``sqlite:///PATH`` or ``postgresql://USER:PW@HOST:PORT/DB``; default: SQLite in state_dir."""
    pool_size: int = Field(default=10, ge=2, le=1000)
    """PostgreSQL: connections each replica keeps at most (each export holds one while it runs)."""
    connect_timeout_s: float = Field(default=10.0, gt=0, le=600)
    """PostgreSQL: how long connecting may take before the database counts as unavailable."""
    lease_poll_s: float = Field(default=1.0, gt=0, le=60)
    """PostgreSQL: how often replicas try for the background-work lease (its holder checks it)."""
    lease_timeout_s: float = Field(default=3.0, gt=0, le=300)
    """PostgreSQL: the lease (and the live channel) is lost when the database does not answer."""
    readers: int = Field(default=4, ge=1, le=64)
    """Reader threads, each with its own connection (one more thread does every write)."""
    cache_mb: int = Field(default=64, ge=1, le=65536)
    """Page cache of each connection, in MiB."""
    mmap_mb: int = Field(default=1024, ge=0, le=1_048_576)
    """Memory-mapped I/O window of each connection, in MiB (0 turns it off)."""
    busy_timeout_s: float = Field(default=10.0, gt=0)
    """How long a connection waits for a lock held by another process."""
    checkpoint_pages: int = Field(default=8000, ge=100)
    """Write-ahead-log size, in 4 KiB pages, that triggers copying it into the database."""


class LimitSettings(_Group):
    """Limits on what clients may send; larger input is refused, never half-stored."""

    max_request_bytes: int = Field(default=32 * MIB, ge=KIB)
    """Largest JSON request body."""
    max_package_bytes: int = Field(default=DEFAULT_LIMITS.max_archive_bytes, ge=KIB)
    """Largest model package archive, as uploaded (compressed)."""
    max_package_files: int = Field(default=DEFAULT_LIMITS.max_members, ge=1)
    """Most entries (files and directories) in a model package archive."""
    max_member_bytes: int = Field(default=DEFAULT_LIMITS.max_member_bytes, ge=KIB)
    """Largest single file in a model package archive."""
    max_unpacked_bytes: int = Field(default=DEFAULT_LIMITS.max_total_bytes, ge=KIB)
    """Largest total uncompressed size of an archive, counted while decompressing (gzip bombs)."""
    max_event_batch: int = Field(default=5000, ge=1, le=5000)
    """Most events in one ``POST /api/v1/events``."""

    def archive_limits(self) -> ArchiveLimits:
        """The package limits as :class:`~pilothouse.modelpkg.ArchiveLimits` (the server's too)."""
        return ArchiveLimits(
            max_archive_bytes=self.max_package_bytes,
            max_members=self.max_package_files,
            max_member_bytes=self.max_member_bytes,
            max_total_bytes=self.max_unpacked_bytes,
        )


class AgentLinkSettings(_Group):
    """How the hub follows its agents."""

    heartbeat_timeout_s: float = Field(default=60.0, gt=0)
    """An agent without a heartbeat for this long is marked offline (``agent.offline`` event)."""
    keepalive_interval_s: float = Field(default=15.0, gt=0)
    """Comment sent on an idle watch stream (SSE) so proxies and clients see it alive."""
    watch_max_duration_s: float | None = Field(default=None, gt=0)
    """A watch or live event stream ends after this long; its client resumes it where it was."""


class EventSettings(_Group):
    """Which event times are believed."""

    max_clock_skew_s: float = Field(default=300.0, ge=0, le=86_400)
    """How far ahead of the hub's clock an event's time may be (a producer's clock skew)."""
    max_age_days: float = Field(default=3650.0, gt=0, le=36_500)
    """How far behind the hub's clock an event's time may be (older: a broken clock)."""


class NotificationSettings(_Group):
    """How notifications reach their channels (Slack, webhooks)."""

    hub_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/\S*)?$")
    """Base URL of this hub as people reach it, for links in messages; default from ``listen``."""
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    """Time budget of one delivery attempt (connect, send, answer)."""
    max_attempts: int = Field(default=10, ge=1, le=100)
    """Attempts of a message that keeps failing temporarily before it is given up."""
    backoff_initial_s: float = Field(default=5.0, ge=0)
    """Delay before the first retry; doubles each attempt, with jitter."""
    backoff_max_s: float = Field(default=600.0, ge=0)
    """Upper bound of a retry delay."""
    concurrency: int = Field(default=8, ge=1, le=256)
    """Messages being sent at once."""
    max_events_per_message: int = Field(default=10, ge=1, le=100)
    """Events listed in one message; the rest are counted (``omitted_events``)."""
    allow_private_targets: bool = False
    """Let channels send to loopback, private, link-local and other internal addresses."""
    proxy_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+/?$")
    """Send every notification through this HTTP proxy (an egress gateway); none: directly."""


class RetentionSettings(_Group):
    """How long events are kept, and how the purge works."""

    default_days: int = Field(default=90, ge=1, le=36_500)
    """Events younger than this are never purged; ``PUT /api/v1/settings/retention`` wins."""
    purge_interval_s: float = Field(default=3600.0, gt=0)
    """How often older events are purged (a ``PUT`` of the retention purges at once)."""
    purge_batch: int = Field(default=2000, ge=1, le=100_000)
    """Events removed per write transaction, so ingest and reads are never held up for long."""
    purge_pause_s: float = Field(default=0.02, ge=0)
    """Pause between two purge transactions."""


class MonitoringSettings(_Group):
    """How prediction statistics are kept, and how retraining triggers are sent."""

    minute_windows_hours: float = Field(default=24.0, gt=0, le=24 * 366)
    """Statistics windows are kept as received this long, then rolled up into hourly ones."""
    max_batch_bytes: int = Field(default=16 * MIB, ge=KIB)
    """Largest statistics upload (``POST /api/v1/agent/monitoring``) read (413 past it)."""
    max_associations_per_window: int = Field(default=10_000, ge=0, le=1_000_000)
    """Predictions per window kept for joining actuals (the first ones; the rest are dropped)."""
    retraining_secret: SecretStr | None = Field(default=None, min_length=16)
    """Signs retraining webhooks (``X-Pilothouse-Signature``, as notification webhooks)."""
    retraining_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """Time budget of one retraining trigger (the webhook call, or the command)."""
    schedule_interval_s: float = Field(default=60.0, gt=0)
    """How often scheduled retraining policies (``every_s``) are looked at."""


class HubSettings(LayeredSettings):
    """Every setting of one hub process."""

    model_config = SettingsConfigDict(
        env_prefix="PILOTHOUSE_HUB_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    state_dir: Path = Path(".pilothouse/hub")
    """Where the hub keeps its files: database, model package blobs, generated admin token."""
    admin_token: SecretStr | None = None
    """Bearer token for administration; default: generated once into ``<state_dir>/admin-token``."""
    admin_token_file: Path | None = None
    """A file holding the admin token (a mounted secret every replica shares)."""
    secret_key: SecretStr | None = Field(default=None, min_length=32)
    """Encrypts channel URLs and secrets at rest; default: made in ``<state_dir>/secret-key``."""
    secret_key_file: Path | None = None
    """A file holding the secret key (at least 32 characters; shared by every replica)."""
    listen: ListenSettings = Field(default_factory=ListenSettings)
    """Listen address."""
    http: HttpSettings = Field(default_factory=HttpSettings)
    """Connection timeouts."""
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    """Database."""
    limits: LimitSettings = Field(default_factory=LimitSettings)
    """Request and package limits."""
    agents: AgentLinkSettings = Field(default_factory=AgentLinkSettings)
    """Agent heartbeats and watch streams."""
    events: EventSettings = Field(default_factory=EventSettings)
    """Event time bounds."""
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    """Notification delivery."""
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    """Event retention and purge (the hourly statistics rollups are kept as long)."""
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    """Prediction statistics: how long windows stay unrolled, upload limits, retraining."""
    log: LogSettings = Field(default_factory=LogSettings)
    """Structured logging."""

    @property
    def uses_postgres(self) -> bool:
        """Whether ``database.url`` names a PostgreSQL database."""
        url = self.database.url or ""
        return url.startswith(POSTGRES_SCHEMES) and len(url) > url.index("//") + 2

    @property
    def database_path(self) -> Path:
        """The SQLite file named by ``database.url``, or ``<state_dir>/hub.db``."""
        url = self.database.url
        if url is None:
            return self.state_dir / "hub.db"
        prefix = "sqlite:///"
        if not url.startswith(prefix) or url == prefix:
            expected = "expected sqlite:///PATH or postgresql://[USER[:PASSWORD]@]HOST[:PORT]/DB"
            raise ConfigError([f"database.url: got {url!r}; {expected}"])
        return Path(url.removeprefix(prefix))

    @property
    def admin_token_path(self) -> Path:
        """Where a generated admin token is kept."""
        return self.state_dir / "admin-token"

    @property
    def secret_key_path(self) -> Path:
        """Where a generated secret key is kept."""
        return self.state_dir / "secret-key"

    @property
    def public_url(self) -> str:
        """``notifications.hub_url``, or the listen address as a URL."""
        if self.notifications.hub_url:
            return self.notifications.hub_url.rstrip("/")
        host = self.listen.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.listen.port}"

    def check(self) -> None:
        """Refuse a wrong database URL, or a secret given twice, at start, not at first use."""
        if not self.uses_postgres:
            _ = self.database_path
        for name in ("admin_token", "secret_key"):
            if getattr(self, name) is not None and getattr(self, f"{name}_file") is not None:
                raise ConfigError(
                    [f"{name} and {name}_file are both set: set the value or its file, not both"]
                )
