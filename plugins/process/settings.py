"""Settings of the ``process`` plugin (``plugin_settings`` in the agent's config)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pilothouse.foundation.errors import ConfigError


class ProcessPluginSettings(BaseModel):
    """How prediction servers are run on this machine."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    mode: Literal["shared", "per_deployment"] = "shared"
    """One server for every deployment of the PE, or one server per deployment."""
    host: str = "127.0.0.1"
    """Address the servers listen on (and that prediction URLs name)."""
    public_host: str | None = None
    """Host name put in prediction URLs, when clients reach the servers by another name."""
    ready_timeout_s: float = Field(default=30.0, gt=0)
    """How long a new server may take to answer /v2/health/ready."""
    check_interval_s: float = Field(default=1.0, gt=0)
    """How often servers are checked for crashes."""
    restart_backoff_max_s: float = Field(default=30.0, gt=0)
    """Upper bound of the delay before a crashed server is restarted."""
    stop_servers_on_unload: bool = False
    """Stop the servers when the agent stops (``pilothouse up``); by default they keep
    serving and a restarted agent adopts them."""
    packages: dict[str, Path] = Field(default_factory=dict)
    """Standalone mode: model package id to a package directory or archive."""
    request_timeout_s: float = Field(default=120.0, gt=0)
    """Time budget of one call to a server's admin API (loading a model included)."""
    server_args: list[str] = Field(default_factory=list)
    """Extra arguments for ``pilothouse serve``."""

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ProcessPluginSettings:
        """Validate ``plugin_settings`` or raise ``ConfigError`` naming each field."""
        try:
            return cls.model_validate(dict(raw))
        except ValidationError as exc:
            problems = [
                f"plugin_settings.{'.'.join(str(p) for p in e['loc'])}: got {e.get('input')!r}; "
                f"{e['msg']}"
                for e in exc.errors(include_url=False)
            ]
            raise ConfigError(problems, source="process plugin settings") from None
