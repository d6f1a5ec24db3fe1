"""Starting and stopping the gRPC endpoint on the running event loop.

grpcio's asyncio server shares the loop with aiohttp: no second process, no
thread hand-off per request. Its message size follows ``max_body_bytes`` and
an idle connection is closed after ``keepalive_timeout_s``, as on REST.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from pilothouse.serving.deployments import DeploymentRegistry
from pilothouse.serving.grpcapi import inference_pb2_grpc
from pilothouse.serving.grpcapi.service import InferenceService
from pilothouse.serving.inference import PredictionService
from pilothouse.serving.settings import ServerSettings


@dataclass(frozen=True, slots=True)
class GrpcEndpoint:
    """A started gRPC server and the port it listens on."""

    server: grpc.aio.Server
    port: int

    async def stop(self, grace_s: float) -> None:
        """Refuse new calls, let running ones finish within ``grace_s``."""
        await self.server.stop(grace_s)


async def start(
    settings: ServerSettings, deployments: DeploymentRegistry, predictions: PredictionService
) -> GrpcEndpoint:
    """Listen on ``settings.host:settings.grpc_port`` (0: any free port)."""
    assert settings.grpc_port is not None
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.max_connection_idle_ms", int(settings.keepalive_timeout_s * 1000)),
            ("grpc.so_reuseport", 0),
        ]
    )
    inference_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        InferenceService(deployments, predictions), server
    )
    port = server.add_insecure_port(f"{_bracketed(settings.host)}:{settings.grpc_port}")
    if port == 0:
        raise OSError(f"cannot listen for gRPC on {settings.host}:{settings.grpc_port}")
    await server.start()
    return GrpcEndpoint(server, port)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
