"""Request bodies in, response bodies out, for V2 ``infer`` and the plain rows endpoint.

Bodies are decoded with orjson and handed straight to NumPy (orjson parses a
100-row body about seven times faster than the standard library); responses
are encoded by orjson too, float arrays directly from NumPy. This module is
also where :class:`modelpkg.InputError` enters the server: it becomes a
:class:`~serving.errors.BadInputError` naming the row and the feature.

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

from modelpkg import InputError, Prediction, Schema, Table
from serving.errors import BadInputError, BadRequestError

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
    """A decoded V2 inference request."""

    table: Table
    id: str | None
    outputs: tuple[str, ...]


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
    body: bytes, schema: Schema, max_rows: int, *, proba_supported: bool
) -> InferRequest:
    """A V2 inference request body."""
    doc = load_json(body)
    if not isinstance(doc, dict):
        raise BadRequestError("expected a JSON object with 'inputs'")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequestError("'inputs' must be a non-empty list of tensors")
    tensors = [_tensor_fields(t, i) for i, t in enumerate(inputs)]
    for _, shape, _, _ in tensors:
        if shape and shape[0] > max_rows:
            raise _too_many(shape[0], max_rows)
    by_feature = len(tensors) > 1 or (
        len(schema.names) == 1 and tensors[0][0] == schema.names[0] and len(tensors[0][1]) == 1
    )
    if by_feature:
        table = _translated(lambda: schema.from_columns(_columns(tensors, schema)))
    else:
        table = _translated(
            lambda: schema.from_matrix(
                _matrix(tensors[0], schema), source=f"input {tensors[0][0]!r}"
            )
        )
    request_id = doc.get("id")
    return InferRequest(
        table, request_id if isinstance(request_id, str) else None, _outputs(doc, proba_supported)
    )


def encode_infer(
    model_name: str, version: str, request_id: str, prediction: Prediction, outputs: tuple[str, ...]
) -> bytes:
    """A V2 inference response."""
    values = prediction.values
    rows = int(values.shape[0])
    out: list[dict[str, Any]] = []
    for name in outputs:
        if name == PREDICT:
            out.append(
                {
                    "name": PREDICT,
                    "shape": [rows],
                    "datatype": v2_datatype(values),
                    "data": _data(values),
                }
            )
        elif name == PREDICT_PROBA and prediction.proba is not None:
            proba = prediction.proba
            out.append(
                {
                    "name": PREDICT_PROBA,
                    "shape": list(proba.shape),
                    "datatype": "FP64",
                    "data": proba.ravel(),
                }
            )
    doc = {"model_name": model_name, "model_version": version, "id": request_id, "outputs": out}
    return orjson.dumps(doc, option=_NUMPY_OPTS)


def encode_rows(
    prediction: Prediction, *, deployment_id: str, package_id: str, classes: tuple[str, ...]
) -> bytes:
    """The plain endpoint's answer."""
    doc: dict[str, Any] = {
        "deployment_id": deployment_id,
        "model_package_id": package_id,
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
        fields = {
            k: v
            for k, v in (("feature", exc.feature), ("row", exc.row), ("expected", exc.expected))
            if v is not None
        }
        raise BadInputError(str(exc), **fields) from None
    return table


def _too_many(rows: int, max_rows: int) -> BadRequestError:
    return BadRequestError(f"too many rows in one request: {rows:,} (at most {max_rows:,})")


def _tensor_fields(tensor: Any, index: int) -> tuple[str, list[int], str, Any]:
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
        or not all(isinstance(d, int) and d >= 0 for d in shape)
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
    if "data" not in tensor or not isinstance(tensor["data"], list):
        raise BadRequestError(
            f"{where}.data ({name}): required, a list (binary data is not supported)"
        )
    return name, shape, datatype, tensor["data"]


def _flat(tensor: tuple[str, list[int], str, Any]) -> npt.NDArray[Any]:
    name, shape, datatype, data = tensor
    values = _typed(name, datatype, data)
    size = math.prod(shape)
    if values.size != size:
        raise BadRequestError(
            f"input {name!r}: shape {shape} needs {size:,} values, got {values.size:,}"
        )
    return values.reshape(shape)


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
    if datatype in _INT_RANGES and values.dtype.kind in "iu":
        low, high = _INT_RANGES[datatype]
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
_INT_RANGES = {
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


def _matrix(tensor: tuple[str, list[int], str, Any], schema: Schema) -> npt.NDArray[Any]:
    name, shape, _, _ = tensor
    width = len(schema.names)
    if len(shape) != 2 or shape[1] != width:
        known = ", ".join(schema.names)
        raise BadRequestError(
            f"input {name!r}: expected shape [rows, {width}] with the features in order ({known}), "
            f"or one input per feature named after it; got shape {shape}"
        )
    return _flat(tensor)


def _columns(tensors: list[tuple[str, list[int], str, Any]], schema: Schema) -> dict[str, Any]:
    known = set(schema.names)
    columns: dict[str, Any] = {}
    for tensor in tensors:
        name, shape, _, _ = tensor
        if name not in known:
            raise BadRequestError(
                f"input {name!r} is not a feature; with several inputs, each must be named after a "
                f"feature: {', '.join(schema.names)}"
            )
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise BadRequestError(
                f"input {name!r}: expected shape [rows] or [rows, 1], got {shape}"
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


def _outputs(doc: dict[str, Any], proba_supported: bool) -> tuple[str, ...]:
    requested = doc.get("outputs")
    if requested is None:
        return (PREDICT,)
    if not isinstance(requested, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in requested
    ):
        raise BadRequestError("'outputs' must be a list of objects with a 'name'")
    available = (PREDICT, PREDICT_PROBA) if proba_supported else (PREDICT,)
    names = tuple(o["name"] for o in requested)
    for name in names:
        if name not in available:
            raise BadRequestError(
                f"unknown output {name!r}; this model has: {', '.join(available)}"
            )
    return names or (PREDICT,)
