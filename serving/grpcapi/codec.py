"""gRPC messages to and from the server's own request and answer.

A ``ModelInferRequest`` becomes the same :class:`~pilothouse.serving.decoding.InferRequest`
a REST body does: its inputs' values come from ``raw_input_contents`` (one
entry per input, decoded by :mod:`pilothouse.serving.tensors` exactly like the REST
binary extension) or from each input's typed ``contents``; the table is built
and validated by :func:`pilothouse.serving.decoding.table_of`. Outputs are always
answered raw (``raw_output_contents``), which every client of the protocol
reads and which costs no per-value encoding.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from pilothouse.modelpkg import Prediction, Schema

__all__ = ["InferRequest", "Schema", "decode", "encode"]
from pilothouse.serving import decoding, tensors
from pilothouse.serving.decoding import InferRequest
from pilothouse.serving.deployments import Deployment
from pilothouse.serving.errors import BadRequestError
from pilothouse.serving.grpcapi import inference_pb2 as pb
from pilothouse.serving.served import ServedModel
from pilothouse.serving.tensors import Tensor

_CONTENTS: dict[str, tuple[str, Any]] = {
    "BOOL": ("bool_contents", np.bool_),
    "INT8": ("int_contents", np.int32),
    "INT16": ("int_contents", np.int32),
    "INT32": ("int_contents", np.int32),
    "INT64": ("int64_contents", np.int64),
    "UINT8": ("uint_contents", np.uint32),
    "UINT16": ("uint_contents", np.uint32),
    "UINT32": ("uint_contents", np.uint32),
    "UINT64": ("uint64_contents", np.uint64),
    "FP32": ("fp32_contents", np.float32),
    "FP64": ("fp64_contents", np.float64),
    "BYTES": ("bytes_contents", object),
}
"""Which ``InferTensorContents`` field carries each datatype (FP16 travels raw only)."""


def decode(
    message: pb.ModelInferRequest, schema: Schema, max_rows: int, proba_supported: bool
) -> InferRequest:
    """The request a ``ModelInferRequest`` makes, validated like a REST one."""
    # Each attribute read on a protobuf message builds a Python object: read each field once.
    inputs = message.inputs
    if not inputs:
        raise BadRequestError("'inputs' must be a non-empty list of tensors")
    raw = message.raw_input_contents
    if raw and len(raw) != len(inputs):
        raise BadRequestError(
            f"raw_input_contents has {len(raw)} entries for {len(inputs)} inputs: "
            "give one per input, or none"
        )
    found: list[Tensor] = []
    for index, tensor in enumerate(inputs):
        name, datatype, shape = tensor.name, tensor.datatype, tuple(tensor.shape)
        _check_tensor(index, name, datatype, shape)
        decoding.check_rows(shape, max_rows)
        if raw:
            data = tensors.from_raw(name, shape, datatype, raw[index])
        else:
            data = _contents(tensor, name, datatype, shape)
        found.append(Tensor(name, shape, datatype, data))
    requested = message.outputs
    names = [o.name for o in requested] if requested else []
    outputs = decoding.requested_outputs(names, proba_supported)
    return InferRequest(decoding.table_of(found, schema), message.id or None, outputs)


def _check_tensor(index: int, name: str, datatype: str, shape: tuple[int, ...]) -> None:
    if not name:
        raise BadRequestError(f"inputs[{index}].name: required")
    if not shape or min(shape) < 0:
        raise BadRequestError(
            f"inputs[{index}] ({name}).shape: expected non-negative sizes, got {list(shape)}"
        )
    if datatype not in tensors.DATATYPES:
        raise BadRequestError(
            f"inputs[{index}] ({name}).datatype: expected one of "
            f"{', '.join(sorted(tensors.DATATYPES))}, got {datatype!r}"
        )


def encode(
    deployment: Deployment, model: ServedModel, request: InferRequest, prediction: Prediction
) -> pb.ModelInferResponse:
    """The ``ModelInferResponse``: every output raw, in the order asked."""
    found = decoding.output_tensors(prediction, request.outputs)
    # Built in one constructor call: upb fills every field in C, no per-field Python call.
    return pb.ModelInferResponse(
        model_name=deployment.id,
        model_version=model.package_id,
        id=request.id or "",
        outputs=[
            pb.ModelInferResponse.InferOutputTensor(name=name, datatype=datatype, shape=shape)
            for name, shape, datatype, _ in found
        ],
        raw_output_contents=[tensors.to_raw(values, datatype) for _, _, datatype, values in found],
    )


def _contents(
    tensor: pb.ModelInferRequest.InferInputTensor, name: str, datatype: str, shape: tuple[int, ...]
) -> npt.NDArray[Any]:
    if datatype not in _CONTENTS:
        raise BadRequestError(
            f"input {name!r}: {datatype} has no contents field; send it in raw_input_contents"
        )
    field, dtype = _CONTENTS[datatype]
    values = getattr(tensor.contents, field)
    count = math.prod(shape)
    if len(values) != count:
        raise BadRequestError(
            f"input {name!r}: shape {list(shape)} needs {count:,} values, "
            f"got {len(values):,} in contents.{field}"
        )
    if dtype is object:
        array = np.empty(count, dtype=object)
        try:
            array[:] = [v.decode("utf-8") for v in values]
        except UnicodeDecodeError:
            raise BadRequestError(f"input {name!r}: BYTES are not UTF-8 text") from None
        return array.reshape(shape)
    array = np.asarray(values, dtype=dtype)
    low_high = decoding.INT_RANGES.get(datatype)
    if low_high and array.size and (array.min() < low_high[0] or array.max() > low_high[1]):
        raise BadRequestError(
            f"input {name!r} ({datatype}): values must lie in [{low_high[0]}, {low_high[1]}]"
        )
    return array.reshape(shape)
