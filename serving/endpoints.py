"""Where this server answers, for whoever runs it (``GET /admin/server``).

:func:`pilothouse.serving.running.serve` fills it in once each listener is up: the HTTP
port and, when ``grpc_port`` is set, the gRPC port actually bound (a port of
0 picks a free one). A plugin reads it to report the deployment's
``grpc_target`` beside its ``prediction_url``. An application made by
:func:`~pilothouse.serving.api.app.create_app` and run by someone else reports nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Endpoints:
    """The listening addresses of the running server."""

    host: str
    http_port: int | None = None
    grpc_port: int | None = None

    def describe(self) -> dict[str, Any]:
        """A JSON-ready view: ``http`` and ``grpc_target`` as ``host:port`` (or null)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return {
            "host": self.host,
            "http_port": self.http_port,
            "grpc_port": self.grpc_port,
            "http": None if self.http_port is None else f"{host}:{self.http_port}",
            "grpc_target": None if self.grpc_port is None else f"{host}:{self.grpc_port}",
        }
