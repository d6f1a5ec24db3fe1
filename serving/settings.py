"""The prediction server's one settings class.

Precedence, highest first: command-line flags (``pilothouse serve``),
environment variables (``PILOTHOUSE_SERVE_…``, nested groups with ``__``:
``PILOTHOUSE_SERVE_LIMITS__MAX_MEMBERS``), then the defaults below. A wrong
value is refused at start with a message naming the field.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pilothouse.foundation.settings import SecretFileSource
from pilothouse.foundation.validation import explain
from pilothouse.modelpkg import ArchiveLimits
from pilothouse.serving.errors import SettingsError


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
    grpc_port: int | None = Field(default=None, ge=0, le=65535)
    """Port of the gRPC endpoint (0 picks a free one); unset: none. Needs ``pilothouse[grpc]``."""
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
    """Loads (unpack, load, warm up) running at once, each in a thread beside those serving."""
    load_timeout_s: float = Field(default=600.0, gt=0)
    """A load still running after this long is abandoned: the change fails, the old model serves."""
    read_timeout_s: float = Field(default=30.0, gt=0)
    """Time for a request body to arrive after its headers; then 408, and the connection closes."""
    keepalive_timeout_s: float = Field(default=75.0, gt=0)
    """An idle connection, or one whose request headers are still incomplete, closes after this."""
    max_body_bytes: int = Field(default=64 * 1024**2, ge=1024)
    """Largest request body accepted (413 beyond)."""
    max_rows: int = Field(default=100_000, ge=1)
    """Most rows in one prediction request."""
    monitor_flush_rows: int = Field(default=1024, ge=1)
    """Input rows buffered before the per-feature statistics are updated (one vectorized pass)."""
    challenger_queue: int = Field(default=1024, ge=1)
    """Requests waiting to be replayed on challengers; beyond, they are dropped and counted."""
    monitoring: bool = True
    """Per-feature statistics, challenger replays and request associations; off only to measure
    their cost (request counts and latency are always kept)."""
    gc_freeze: bool = True
    """Freeze the cyclic GC once loaded (``serve`` only; see :mod:`pilothouse.serving.running`)."""
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    """How long in-flight requests may run on at shutdown."""
    limits: ArchiveLimits = Field(default_factory=ArchiveLimits)
    """Archive limits: :class:`pilothouse.modelpkg.ArchiveLimits`, the hub's definition too."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level written."""
    log_format: Literal["auto", "text", "json"] = "auto"
    """``json`` writes one JSON object a line; ``auto``: JSON in a container, else text."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags, then the environment, where ``PILOTHOUSE_SERVE_ADMIN_TOKEN_FILE`` serves too."""
        return (init_settings, SecretFileSource(settings_cls, env_settings))

    @model_validator(mode="after")
    def _grpc_installed(self) -> ServerSettings:
        if self.grpc_port is not None and importlib.util.find_spec("grpc") is None:
            raise ValueError(
                "grpc_port needs grpcio, which is not installed: "
                "pip install 'pilothouse[grpc]' to enable gRPC"
            )
        return self

    @classmethod
    def load(cls, overrides: dict[str, Any] | None = None) -> ServerSettings:
        """Settings from flags (``overrides``) and the environment, or raise ``SettingsError``."""
        try:
            return cls(**(overrides or {}))
        except ValidationError as exc:
            raise SettingsError(explain(exc)) from None
