"""The Open Inference Protocol over gRPC (``inference.GRPCInferenceService``), optional.

It needs the ``grpc`` extra (``pip install 'pilothouse[grpc]'``: grpcio and
protobuf) and is turned on by ``grpc_port`` (``pilothouse serve --grpc-port``).
The server runs on the same event loop as the HTTP server (grpcio's asyncio
API), over the same registry, validation, monitoring and statistics: a
request is decoded into the same :class:`~pilothouse.serving.decoding.InferRequest` as
REST and goes through :meth:`~pilothouse.serving.inference.PredictionService.infer_with`.

``inference.proto`` is written from the protocol's published definition;
``inference_pb2.py``, ``inference_pb2.pyi`` and ``inference_pb2_grpc.py`` are
generated from it and committed — by grpcio-tools 1.81.1 (libprotoc 33.5,
protobuf gencode 6.33.5), from the repository root::

    .venv/bin/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=.
        --grpc_python_out=. serving/grpcapi/inference.proto   (one line)

``tests/serving/test_grpc_proto.py`` checks that every message and field
matches the one ``tritonclient.grpc`` uses, by name, number and type.
"""
