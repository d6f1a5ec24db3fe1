"""Settings of the ``process`` plugin (``plugin_settings`` in the agent's config)."""

from __future__ import annotations

from pydantic import Field

from pilothouse.plugins.fleet import FleetSettings


class ProcessPluginSettings(FleetSettings):
    """How prediction servers are run on this machine (and the fleet's own settings)."""

    host: str = "127.0.0.1"
    """Address the servers listen on (and that prediction URLs name)."""
    public_host: str | None = None
    """Host name put in prediction URLs, when clients reach the servers by another name."""
    server_args: list[str] = Field(default_factory=list)
    """Extra arguments for ``pilothouse serve``."""
