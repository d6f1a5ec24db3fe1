"""The prediction server's one settings class.

Precedence, highest first: command-line flags (``pilothouse serve``),
environment variables (``PILOTHOUSE_SERVE_…``, nested groups with ``__``:
``PILOTHOUSE_SERVE_LIMITS__MAX_MEMBERS``), then the defaults below. A wrong
value is refused at start with a message naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from pilothouse.foundation.validation import explain
from pilothouse.modelpkg import ArchiveLimits
from pilothouse.serving.errors import SettingsError


class LimitSettings(BaseModel):
    """Bounds on model package archives (untrusted input)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    max_archive_bytes: int = Field(default=2 * 1024**3, gt=0)
    """Size of a compressed archive."""
    max_members: int = Field(default=10_000, gt=0)
    """Files and directories in an archive."""
    max_member_bytes: int = Field(default=2 * 1024**3, gt=0)
    """Size of one file in an archive."""
    max_total_bytes: int = Field(default=4 * 1024**3, gt=0)
    """Total uncompressed size of an archive."""

    def archive_limits(self) -> ArchiveLimits:
        """As :class:`pilothouse.modelpkg.ArchiveLimits`."""
        return ArchiveLimits(**self.model_dump())


class ServerSettings(BaseSettings):
    """Every setting of one prediction server process."""

    model_config = SettingsConfigDict(
        env_prefix="PILOTHOUSE_SERVE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = Field(default=8702, ge=0, le=65535)
    """Port to listen on (0 picks a free one)."""
    admin_token: SecretStr = Field(min_length=8)
    """Bearer token of the admin API (``/admin/...``); at least 8 characters."""
    state_dir: Path = Path(".pilothouse/serve")
    """Unpacked archives and the list of loaded deployments (reloaded at start)."""
    deployments: dict[str, Path] = Field(default_factory=dict)
    """Deployments to load at start: id -> package directory or archive."""
    restore: bool = True
    """Reload, at start, the deployments that were loaded when the server last stopped."""
    inline_budget_ms: float = Field(default=1.0, ge=0)
    """A prediction estimated (at warm-up) to cost less runs on the event loop; else in a thread."""
    predict_threads: int = Field(default=4, ge=1, le=256)
    """Threads for predictions too costly for the event loop."""
    load_threads: int = Field(default=2, ge=1, le=64)
    """Threads that unpack, load and warm up models (beside those serving)."""
    max_body_bytes: int = Field(default=64 * 1024**2, ge=1024)
    """Largest request body accepted (413 beyond)."""
    max_rows: int = Field(default=100_000, ge=1)
    """Most rows in one prediction request."""
    monitor_flush_rows: int = Field(default=1024, ge=1)
    """Input rows buffered before the per-feature statistics are updated (one vectorized pass)."""
    challenger_queue: int = Field(default=1024, ge=1)
    """Requests waiting to be replayed on challengers; beyond, they are dropped and counted."""
    gc_freeze: bool = True
    """Freeze the cyclic GC once loaded (``serve`` only; see :mod:`pilothouse.serving.running`)."""
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    """How long in-flight requests may run on at shutdown."""
    limits: LimitSettings = Field(default_factory=LimitSettings)
    """Archive limits."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level written."""
    log_format: Literal["text", "json"] = "text"
    """``json`` writes one JSON object a line."""

    @classmethod
    def load(cls, overrides: dict[str, Any] | None = None) -> ServerSettings:
        """Settings from flags (``overrides``) and the environment, or raise ``SettingsError``."""
        try:
            return cls(**(overrides or {}))
        except ValidationError as exc:
            raise SettingsError(explain(exc)) from None
