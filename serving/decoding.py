"""Request bodies in, response bodies out, for V2 ``infer`` and the plain rows endpoint.

Bodies are decoded with orjson and handed straight to NumPy (orjson parses a
100-row body about seven times faster than the standard library); responses
are encoded by orjson too, float arrays directly from NumPy. This module is
also where :class:`pilothouse.modelpkg.InputError` enters the server: it becomes a
:class:`~pilothouse.serving.errors.BadInputError` naming the row and the feature.

V2 ``infer`` takes either **one tensor** of shape ``[rows, features]`` in the
manifest's feature order (any name), or **one tensor per feature**, named
after it, of shape ``[rows]`` or ``[rows, 1]`` (MLServer's pandas-codec
columns). It answers an output ``predict`` and, when asked for in
``outputs`` and the model supports it, ``predict_proba`` ``[rows, classes]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from pilothouse.modelpkg import InputError, Prediction, Schema, Table
from pilothouse.serving import tensors
from pilothouse.serving.errors import BadInputError, BadRequestError
from pilothouse.serving.tensors import Tensor

PREDICT = "predict"
PREDICT_PROBA = "predict_proba"

V2_NUMERIC = frozenset(
    {
        "BOOL",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "FP16",
        "FP32",
        "FP64",
    }
)
V2_DATATYPES = V2_NUMERIC | {"BYTES"}
_NUMPY_OPTS = orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True, slots=True)
class InferRequest:
    """A decoded V2 inference request (from any transport)."""

    table: Table
    id: str | None
    outputs: tuple[str, ...]
    binary: frozenset[str] = frozenset()
    """Outputs to answer as raw bytes (REST binary extension; gRPC answers all raw)."""


def load_json(body: bytes) -> Any:
    """Parse a JSON body, or raise :class:`BadRequestError`."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"the body is not valid JSON: {exc}") from None


def decode_rows(body: bytes, schema: Schema, max_rows: int) -> Table:
    """``{"rows": [{feature: value, ...}, ...]}``."""
    doc = load_json(body)
    if not isinstance(doc, dict) or "rows" not in doc:
        raise BadRequestError(
            'expected a JSON object {"rows": [{feature: value, ...}, ...]}; '
            f"features: {', '.join(schema.names)}"
        )
    rows = doc["rows"]
    if isinstance(rows, list) and len(rows) > max_rows:
        raise _too_many(len(rows), max_rows)
    return _translated(lambda: schema.from_rows(rows))


def decode_csv(body: bytes, schema: Schema, max_rows: int) -> Table:
    """CSV text with a header row naming the features."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequestError("the CSV body is not UTF-8 text") from None
    table = _translated(lambda: schema.from_csv(text))
    if table.rows > max_rows:
        raise _too_many(table.rows, max_rows)
    return table


def decode_infer(
    body: bytes,
    schema: Schema,
    max_rows: int,
    *,
    proba_supported: bool,
    header_length: str | None = None,
) -> InferRequest:
    """A V2 inference request body: JSON, or a JSON header then raw tensor bytes.

    ``header_length`` is the ``Inference-Header-Content-Length`` header: with
    it, the first that many bytes are the JSON header, and each input that has
    ``parameters.binary_data_size`` takes its values from the bytes after it,
    in input order (the binary tensor data extension).
    """
    header, raw = _split(body, header_length)
    doc = load_json(header)
    if not isinstance(doc, dict):
        raise BadRequestError("expected a JSON object with 'inputs'")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequestError("'inputs' must be a non-empty list of tensors")
    tensors = _tensors(inputs, raw, max_rows)
    request_id = doc.get("id")
    outputs, binary = _outputs(doc, proba_supported)
    return InferRequest(
        table_of(tensors, schema), request_id if isinstance(request_id, str) else None, outputs,
        binary,
    )  # fmt: skip


def table_of(tensors: list[Tensor], schema: Schema) -> Table:
    """The validated table of a request's input tensors (any transport)."""
    first = tensors[0]
    by_feature = len(tensors) > 1 or (
        len(schema.names) == 1 and first.name == schema.names[0] and len(first.shape) == 1
    )
    if by_feature:
        return _translated(lambda: schema.from_columns(_columns(tensors, schema)))
    matrix = _matrix(first, schema)
    try:
        return schema.from_matrix(matrix, source=f"input {first.name!r}")
    except InputError as exc:  # the one-tensor path of every request: no closure to build
        raise _bad_input(exc) from None


def check_rows(shape: tuple[int, ...], max_rows: int) -> None:
    """Refuse a tensor of more than ``max_rows`` rows, before its data is touched."""
    if shape and shape[0] > max_rows:
        raise _too_many(shape[0], max_rows)


def encode_infer(
    model_name: str, version: str, request_id: str, prediction: Prediction, request: InferRequest
) -> tuple[bytes, int | None]:
    """A V2 inference response, and the JSON header's length when binary outputs follow it."""
    out: list[dict[str, Any]] = []
    raw: list[bytes] = []
    for name, shape, datatype, values in output_tensors(prediction, request.outputs):
        tensor: dict[str, Any] = {"name": name, "shape": shape, "datatype": datatype}
        if name in request.binary:
            data = tensors.to_raw(values, datatype)
            tensor["parameters"] = {"binary_data_size": len(data)}
            raw.append(data)
        else:
            tensor["data"] = _data(values)
        out.append(tensor)
    doc = {"model_name": model_name, "model_version": version, "id": request_id, "outputs": out}
    header = orjson.dumps(doc, option=_NUMPY_OPTS)
    if not raw:
        return header, None
    return b"".join((header, *raw)), len(header)


def output_tensors(
    prediction: Prediction, outputs: tuple[str, ...]
) -> list[tuple[str, list[int], str, npt.NDArray[Any]]]:
    """(name, shape, datatype, flat values) of each requested output."""
    values = prediction.values
    found: list[tuple[str, list[int], str, npt.NDArray[Any]]] = []
    for name in outputs:
        if name == PREDICT:
            found.append((PREDICT, [int(values.shape[0])], v2_datatype(values), values))
        elif name == PREDICT_PROBA and prediction.proba is not None:
            proba = prediction.proba
            found.append((PREDICT_PROBA, list(proba.shape), "FP64", proba.ravel()))
    return found


def encode_rows(
    prediction: Prediction,
    *,
    deployment_id: str,
    package_id: str,
    classes: tuple[str, ...],
    request_id: str,
) -> bytes:
    """The plain endpoint's answer."""
    doc: dict[str, Any] = {
        "deployment_id": deployment_id,
        "model_package_id": package_id,
        "request_id": request_id,
        "predictions": _data(prediction.values),
    }
    if prediction.proba is not None:
        doc["classes"] = classes
        doc["probabilities"] = prediction.proba
    return orjson.dumps(doc, option=_NUMPY_OPTS)


def v2_datatype(values: npt.NDArray[Any]) -> str:
    """The V2 datatype of a prediction array."""
    kind = values.dtype.kind
    if kind == "f":
        return "FP64" if values.dtype.itemsize == 8 else "FP32"
    if kind == "i":
        return "INT64"
    if kind == "u":
        return "UINT64"
    if kind == "b":
        return "BOOL"
    return "BYTES"


def _data(values: npt.NDArray[Any]) -> Any:
    if values.dtype.kind in "fiub" and values.flags.c_contiguous:
        return values
    return values.tolist()


def _translated(convert: Any) -> Table:
    try:
        table: Table = convert()
    except InputError as exc:
        raise _bad_input(exc) from None
    return table


def _bad_input(exc: InputError) -> BadInputError:
    fields = {
        k: v
        for k, v in (("feature", exc.feature), ("row", exc.row), ("expected", exc.expected))
        if v is not None
    }
    return BadInputError(str(exc), **fields)


def _too_many(rows: int, max_rows: int) -> BadRequestError:
    return BadRequestError(f"too many rows in one request: {rows:,} (at most {max_rows:,})")


def _split(body: bytes, header_length: str | None) -> tuple[bytes, memoryview | None]:
    if header_length is None:
        return body, None
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if not 0 <= length <= len(body):
        raise BadRequestError(
            f"Inference-Header-Content-Length: expected a byte count within the body "
            f"(0 to {len(body):,}), got {header_length[:40]!r}"
        )
    view = memoryview(body)
    return body[:length], view[length:]


def _tensors(inputs: list[Any], raw: memoryview | None, max_rows: int) -> list[Tensor]:
    found: list[Tensor] = []
    offset = 0
    for index, item in enumerate(inputs):
        tensor, size = _tensor_fields(item, index, binary=raw is not None)
        check_rows(tensor.shape, max_rows)
        if size is not None:
            assert raw is not None
            if size > len(raw) - offset:
                raise BadRequestError(
                    f"inputs[{index}] ({tensor.name}): binary_data_size {size:,} runs past the "
                    f"end of the body ({len(raw) - offset:,} bytes left)"
                )
            data = tensors.from_raw(
                tensor.name, tensor.shape, tensor.datatype, raw[offset : offset + size]
            )
            tensor = Tensor(tensor.name, tensor.shape, tensor.datatype, data)
            offset += size
        found.append(tensor)
    if raw is not None and offset != len(raw):
        raise BadRequestError(
            f"the body has {len(raw) - offset:,} bytes beyond the inputs' binary_data_size"
        )
    return found


def _tensor_fields(tensor: Any, index: int, *, binary: bool) -> tuple[Tensor, int | None]:
    """The tensor's fields, and its ``binary_data_size`` when its data is in the raw part."""
    where = f"inputs[{index}]"
    if not isinstance(tensor, dict):
        raise BadRequestError(f"{where}: expected a tensor object with name, shape, datatype, data")
    name = tensor.get("name")
    shape = tensor.get("shape")
    datatype = tensor.get("datatype")
    if not isinstance(name, str) or not name:
        raise BadRequestError(f"{where}.name: required, a string")
    if (
        not isinstance(shape, list)
        or not all(type(d) is int and d >= 0 for d in shape)
        or not shape
    ):
        raise BadRequestError(
            f"{where}.shape ({name}): expected a list of non-negative integers, got {shape!r}"
        )
    if datatype not in V2_DATATYPES:
        raise BadRequestError(
            f"{where}.datatype ({name}): expected one of "
            f"{', '.join(sorted(V2_DATATYPES))}, got {datatype!r}"
        )
    parameters = tensor.get("parameters")
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        if not binary:
            raise BadRequestError(
                f"{where}.parameters.binary_data_size ({name}): binary data needs the "
                "Inference-Header-Content-Length header"
            )
        if type(size) is not int or size < 0:
            raise BadRequestError(
                f"{where}.parameters.binary_data_size ({name}): expected a non-negative "
                f"integer, got {size!r}"
            )
        if "data" in tensor:
            raise BadRequestError(f"{where} ({name}): give either data or binary_data_size")
        return Tensor(name, tuple(shape), datatype, None), size
    if "data" not in tensor or not isinstance(tensor["data"], list):
        raise BadRequestError(
            f"{where}.data ({name}): required, a list (or parameters.binary_data_size with "
            "the binary tensor data extension)"
        )
    return Tensor(name, tuple(shape), datatype, tensor["data"]), None


def _flat(tensor: Tensor) -> npt.NDArray[Any]:
    if isinstance(tensor.data, np.ndarray):  # decoded from raw bytes: sized and typed already
        return tensor.data
    values = _typed(tensor.name, tensor.datatype, tensor.data)
    size = math.prod(tensor.shape)
    if values.size != size:
        raise BadRequestError(
            f"input {tensor.name!r}: shape {list(tensor.shape)} needs {size:,} values, "
            f"got {values.size:,}"
        )
    return values.reshape(tensor.shape)


def _typed(name: str, datatype: str, data: list[Any]) -> npt.NDArray[Any]:
    """JSON ``data`` as an array, refused unless its values are of the tensor's ``datatype``.

    NumPy infers the kind of the values in the same C pass that builds the
    array (all integers, all booleans, some floats, some strings), so checking
    it costs nothing per value; nulls (nullable features) take a slower path.
    Numbers keep their own dtype: the schema converts them to float64 in its
    one copy.
    """
    if datatype == "BYTES":
        values = _array(data, object)
        kinds = set(map(type, values.ravel().tolist()))
        if not kinds <= {str, type(None)}:
            raise _wrong_data(name, datatype, data, lambda v: v is None or isinstance(v, str))
        return values
    values = _array(data, None)
    if values.size == 0:
        return values
    accepts = _ACCEPTS[datatype]
    if values.dtype.kind == "O":  # nulls among the values
        cells = values.ravel().tolist()
        if not all(v is None or accepts(v) for v in cells):
            raise _wrong_data(name, datatype, data, lambda v: v is None or accepts(v))
        return np.asarray(cells, dtype=np.float64).reshape(values.shape)
    if values.dtype.kind not in _KINDS[datatype]:
        raise _wrong_data(name, datatype, data, accepts)
    if datatype in INT_RANGES and values.dtype.kind in "iu":
        low, high = INT_RANGES[datatype]
        if values.min() < low or values.max() > high:
            raise BadRequestError(
                f"input {name!r} ({datatype}): values must lie in [{low}, {high}], "
                f"got {values.min() if values.min() < low else values.max()}"
            )
    return values


def _array(data: list[Any], dtype: Any) -> npt.NDArray[Any]:
    try:
        return np.asarray(data, dtype=dtype)
    except (ValueError, TypeError):  # nested unevenly: the shape check names the problem
        return np.asarray(_flatten(data), dtype=object if dtype is None else dtype)


def _wrong_data(
    name: str, datatype: str, data: list[Any], accepts: Callable[[Any], bool]
) -> BadRequestError:
    """The error naming the first value (as sent) that the datatype does not take."""
    first = next((v for v in _flatten(data) if not accepts(v)), None)
    return BadRequestError(
        f"input {name!r}: datatype {datatype} takes {_TAKES[datatype]}, got {first!r}",
        expected=_TAKES[datatype],
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


_INTEGER_TYPES = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
_FLOAT_TYPES = ("FP16", "FP32", "FP64")
INT_RANGES = {
    t: (int(np.iinfo(t.lower()).min), int(np.iinfo(t.lower()).max)) for t in _INTEGER_TYPES
}
_KINDS = {"BOOL": "b", **dict.fromkeys(_INTEGER_TYPES, "iu"), **dict.fromkeys(_FLOAT_TYPES, "iuf")}
_ACCEPTS: dict[str, Callable[[Any], bool]] = {
    "BOOL": _is_bool,
    **dict.fromkeys(_INTEGER_TYPES, _is_int),
    **dict.fromkeys(_FLOAT_TYPES, _is_number),
}
_TAKES = {
    "BOOL": "true or false",
    "BYTES": "strings",
    **dict.fromkeys(_INTEGER_TYPES, "integers"),
    **dict.fromkeys(_FLOAT_TYPES, "numbers"),
}


def _matrix(tensor: Tensor, schema: Schema) -> npt.NDArray[Any]:
    width = len(schema.names)
    if len(tensor.shape) != 2 or tensor.shape[1] != width:
        known = ", ".join(schema.names)
        raise BadRequestError(
            f"input {tensor.name!r}: expected shape [rows, {width}] with the features in order "
            f"({known}), or one input per feature named after it; got shape {list(tensor.shape)}"
        )
    return _flat(tensor)


def _columns(tensors: list[Tensor], schema: Schema) -> dict[str, Any]:
    known = set(schema.names)
    columns: dict[str, Any] = {}
    for tensor in tensors:
        name, shape = tensor.name, tensor.shape
        if name not in known:
            raise BadRequestError(
                f"input {name!r} is not a feature; with several inputs, each must be named after a "
                f"feature: {', '.join(schema.names)}"
            )
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise BadRequestError(
                f"input {name!r}: expected shape [rows] or [rows, 1], got {list(shape)}"
            )
        columns[name] = _flat(tensor).reshape(-1)
    return columns


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    for item in data:
        out.extend(_flatten(item))
    return out


def _outputs(doc: dict[str, Any], proba_supported: bool) -> tuple[tuple[str, ...], frozenset[str]]:
    """The requested outputs, and those to send as raw bytes (binary tensor data extension)."""
    parameters = doc.get("parameters")
    all_binary = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    requested = doc.get("outputs")
    if requested is None:
        return (PREDICT,), frozenset({PREDICT} if all_binary else ())
    if not isinstance(requested, list):
        raise BadRequestError("'outputs' must be a list of objects with a 'name'")
    names: list[str] = []
    binary: set[str] = set()
    for output in requested:
        name = output.get("name") if isinstance(output, dict) else None
        if not isinstance(name, str):
            raise BadRequestError("'outputs' must be a list of objects with a 'name'")
        names.append(name)
        if _binary_output(output, all_binary):
            binary.add(name)
    return requested_outputs(names, proba_supported), frozenset(binary)


def requested_outputs(names: list[str], proba_supported: bool) -> tuple[str, ...]:
    """The outputs a request names (``predict`` when none), each checked to exist."""
    available = (PREDICT, PREDICT_PROBA) if proba_supported else (PREDICT,)
    for name in names:
        if name not in available:
            raise BadRequestError(
                f"unknown output {name!r}; this model has: {', '.join(available)}"
            )
    return tuple(names) or (PREDICT,)


def _binary_output(output: dict[str, Any], default: bool) -> bool:
    parameters = output.get("parameters")
    if isinstance(parameters, dict) and "binary_data" in parameters:
        return parameters["binary_data"] is True
    return default
