"""The settings every server-running plugin shares; a plugin's settings model extends them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from pilothouse.plugins.fleet.routing import Mode


def _mode_alias(value: Any) -> Any:
    # The process plugin's first name for ``dedicated``; configurations keep working.
    return "dedicated" if value == "per_deployment" else value


class FleetSettings(BaseModel):
    """How a plugin runs its prediction servers (``plugin_settings``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    mode: Annotated[Mode, BeforeValidator(_mode_alias)] = "shared"
    """``shared``: one server for every deployment of the PE; ``dedicated`` (or
    ``per_deployment``): one server per deployment."""
    packages: dict[str, Path] = Field(default_factory=dict)
    """Standalone mode: model package id to a package directory or archive."""
    ready_timeout_s: float = Field(default=30.0, gt=0)
    """How long a new server may take to answer /v2/health/ready."""
    request_timeout_s: float = Field(default=120.0, gt=0)
    """Time budget of one call to a server's admin API (loading a model included)."""
    check_interval_s: float = Field(default=1.0, gt=0)
    """How often servers are checked for crashes."""
    restart_backoff_max_s: float = Field(default=30.0, gt=0)
    """Upper bound of the delay before a crashed server is restarted."""
    stop_idle_shared_server: bool = False
    """Stop the shared server when its last deployment stops (a PE without deployments then
    runs nothing); by default it keeps running, ready for the next launch."""
    stop_servers_on_unload: bool = False
    """Stop the servers when the agent stops (``pilothouse up``); by default they keep
    serving and a restarted agent adopts them."""
