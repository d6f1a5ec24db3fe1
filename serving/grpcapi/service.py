"""``inference.GRPCInferenceService``: thin handlers over the same services as REST.

Each RPC looks up what REST would look up and answers the same facts
(:mod:`pilothouse.serving.protocol`); ``ModelInfer`` goes through
:meth:`~pilothouse.serving.inference.PredictionService.infer_with`, so validation,
monitoring, challengers and statistics are shared, and a request keeps the
model it started on across a replacement. Errors are translated in one place,
:meth:`InferenceService._abort`: a :class:`~pilothouse.serving.errors.ServingError`
becomes the gRPC status matching its HTTP status, with its message.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Never, TypeVar

import grpc

from pilothouse.serving import protocol
from pilothouse.serving.deployments import DeploymentRegistry
from pilothouse.serving.errors import NotFoundError, NotReadyError, ServingError
from pilothouse.serving.grpcapi import codec
from pilothouse.serving.grpcapi import inference_pb2 as pb
from pilothouse.serving.inference import PredictionService

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    422: grpc.StatusCode.FAILED_PRECONDITION,
    503: grpc.StatusCode.UNAVAILABLE,
}
Context = grpc.aio.ServicerContext[object, object]


class InferenceService:
    """The servicer registered on the gRPC server (method names are the protocol's RPCs)."""

    def __init__(self, deployments: DeploymentRegistry, predictions: PredictionService) -> None:
        self._deployments = deployments
        self._predictions = predictions

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: Context
    ) -> pb.ServerLiveResponse:
        """The process answers."""
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: Context
    ) -> pb.ServerReadyResponse:
        """The deployments recorded at start are loaded (or failed)."""
        return pb.ServerReadyResponse(ready=self._deployments.ready.is_set())

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: Context
    ) -> pb.ModelReadyResponse:
        """Whether the deployment (or one version of it) serves; unknown ones are not ready."""
        try:
            deployment = self._deployments.get(request.name)
            if request.version:
                deployment.version(request.version)
        except (NotFoundError, NotReadyError):
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: Context
    ) -> pb.ServerMetadataResponse:
        """Name, version, extensions."""
        return pb.ServerMetadataResponse(
            name=protocol.SERVER_NAME,
            version=protocol.SERVER_VERSION,
            extensions=list(protocol.EXTENSIONS),
        )

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: Context
    ) -> pb.ModelMetadataResponse:
        """The same metadata as ``GET /v2/models/{name}``."""

        async def answer() -> pb.ModelMetadataResponse:
            deployment = self._deployments.get(request.name)
            model = deployment.version(request.version) if request.version else deployment.champion
            doc = protocol.metadata(deployment, model)
            return pb.ModelMetadataResponse(
                name=doc["name"],
                versions=doc["versions"],
                platform=doc["platform"],
                inputs=[_tensor_meta(t) for t in doc["inputs"]],
                outputs=[_tensor_meta(t) for t in doc["outputs"]],
            )

        return await self._guarded(answer, context)

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: Context
    ) -> pb.ModelInferResponse:
        """One inference, raw outputs."""

        def decode(schema: codec.Schema, max_rows: int, proba: bool) -> codec.InferRequest:
            return codec.decode(request, schema, max_rows, proba)

        # The hot path awaits the service directly, not through _guarded(answer): two
        # coroutine frames fewer per call, the same translation of errors.
        try:
            return await self._predictions.infer_with(
                request.model_name, request.model_version or None, decode, codec.encode
            )
        except Exception as exc:
            await self._abort(exc, context)

    @classmethod
    async def _guarded(cls, call: Callable[[], Awaitable[_T]], context: Context) -> _T:
        try:
            return await call()
        except Exception as exc:
            await cls._abort(exc, context)

    @staticmethod
    async def _abort(exc: Exception, context: Context) -> Never:
        """End the call with the gRPC status of ``exc`` (raises, as ``context.abort`` does)."""
        if isinstance(exc, ServingError):
            await context.abort(_STATUS.get(exc.status, grpc.StatusCode.INTERNAL), exc.message)
        log.error("unexpected error answering a gRPC call", exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, "internal server error")


def _tensor_meta(doc: dict[str, object]) -> pb.ModelMetadataResponse.TensorMetadata:
    shape = doc["shape"]
    assert isinstance(shape, list)
    return pb.ModelMetadataResponse.TensorMetadata(
        name=str(doc["name"]), datatype=str(doc["datatype"]), shape=shape
    )
