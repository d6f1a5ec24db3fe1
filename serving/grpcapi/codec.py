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
    if not message.inputs:
        raise BadRequestError("'inputs' must be a non-empty list of tensors")
    raw = message.raw_input_contents
    if raw and len(raw) != len(message.inputs):
        raise BadRequestError(
            f"raw_input_contents has {len(raw)} entries for {len(message.inputs)} inputs: "
            "give one per input, or none"
        )
    found: list[Tensor] = []
    for index, tensor in enumerate(message.inputs):
        shape = tuple(tensor.shape)
        where = f"inputs[{index}] ({tensor.name})"
        if not tensor.name:
            raise BadRequestError(f"inputs[{index}].name: required")
        if not shape or min(shape) < 0:
            raise BadRequestError(f"{where}.shape: expected non-negative sizes, got {list(shape)}")
        if tensor.datatype not in tensors.DATATYPES:
            raise BadRequestError(
                f"{where}.datatype: expected one of {', '.join(sorted(tensors.DATATYPES))}, "
                f"got {tensor.datatype!r}"
            )
        decoding.check_rows(shape, max_rows)
        if raw:
            data = tensors.from_raw(tensor.name, shape, tensor.datatype, raw[index])
        else:
            data = _contents(tensor, shape)
        found.append(Tensor(tensor.name, shape, tensor.datatype, data))
    outputs = decoding.requested_outputs([o.name for o in message.outputs], proba_supported)
    return InferRequest(decoding.table_of(found, schema), message.id or None, outputs)


def encode(
    deployment: Deployment, model: ServedModel, request: InferRequest, prediction: Prediction
) -> pb.ModelInferResponse:
    """The ``ModelInferResponse``: every output raw, in the order asked."""
    answer = pb.ModelInferResponse(
        model_name=deployment.id, model_version=model.package_id, id=request.id or ""
    )
    for name, shape, datatype, values in decoding.output_tensors(prediction, request.outputs):
        answer.outputs.add(name=name, datatype=datatype, shape=shape)
        answer.raw_output_contents.append(tensors.to_raw(values, datatype))
    return answer


def _contents(
    tensor: pb.ModelInferRequest.InferInputTensor, shape: tuple[int, ...]
) -> npt.NDArray[Any]:
    if tensor.datatype not in _CONTENTS:
        raise BadRequestError(
            f"input {tensor.name!r}: {tensor.datatype} has no contents field; "
            "send it in raw_input_contents"
        )
    field, dtype = _CONTENTS[tensor.datatype]
    values = getattr(tensor.contents, field)
    count = math.prod(shape)
    if len(values) != count:
        raise BadRequestError(
            f"input {tensor.name!r}: shape {list(shape)} needs {count:,} values, "
            f"got {len(values):,} in contents.{field}"
        )
    if dtype is object:
        array = np.empty(count, dtype=object)
        try:
            array[:] = [v.decode("utf-8") for v in values]
        except UnicodeDecodeError:
            raise BadRequestError(f"input {tensor.name!r}: BYTES are not UTF-8 text") from None
        return array.reshape(shape)
    array = np.asarray(values, dtype=dtype)
    low_high = decoding.INT_RANGES.get(tensor.datatype)
    if low_high and array.size and (array.min() < low_high[0] or array.max() > low_high[1]):
        raise BadRequestError(
            f"input {tensor.name!r} ({tensor.datatype}): values must lie in "
            f"[{low_high[0]}, {low_high[1]}]"
        )
    return array.reshape(shape)
