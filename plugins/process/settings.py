"""Settings of the ``process`` plugin (``plugin_settings`` in the agent's config)."""

from __future__ import annotations

import importlib.util

from pydantic import Field, model_validator

from pilothouse.plugins.fleet import FleetSettings


class ProcessPluginSettings(FleetSettings):
    """How prediction servers are run on this machine (and the fleet's own settings)."""

    host: str = "127.0.0.1"
    """Address the servers listen on (and that prediction URLs name)."""
    public_host: str | None = None
    """Host name put in prediction URLs, when clients reach the servers by another name."""
    server_args: list[str] = Field(default_factory=list)
    """Extra arguments for ``pilothouse serve``."""
    grpc: bool = Field(default_factory=lambda: importlib.util.find_spec("grpc") is not None)
    """Serve gRPC (Open Inference Protocol) too, on a free port chosen like the HTTP one
    (``pilothouse serve --grpc-port``); on by default when grpcio is installed
    (``pilothouse[grpc]``). Deployments then report a ``grpc_target``."""

    @model_validator(mode="after")
    def _grpc_installed(self) -> ProcessPluginSettings:
        if self.grpc and importlib.util.find_spec("grpc") is None:
            raise ValueError(
                "grpc needs grpcio, which is not installed: "
                "pip install 'pilothouse[grpc]', or set grpc to false"
            )
        return self
