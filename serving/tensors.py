"""Tensors as the Open Inference Protocol carries them, in raw bytes as well as JSON.

Two transports carry a tensor's values as raw little-endian bytes instead of
a JSON list: REST with the *binary tensor data extension* (a JSON header, then
each tensor's bytes, ``parameters.binary_data_size`` long) and gRPC
(``raw_input_contents`` / ``raw_output_contents``). Both use one encoding,
decoded here straight into NumPy: fixed-size datatypes are a view on the
request's bytes (:func:`numpy.frombuffer`, no copy; the schema's float64
conversion is the one copy), ``BOOL`` is one byte per element (0 or 1), and
``BYTES`` elements each carry a 4-byte little-endian length prefix.

Untrusted sizes are checked before any allocation: the byte count must equal
the shape's element count times the item size (a shape whose product
overflows anything simply never matches), and a ``BYTES`` length prefix that
runs past the buffer is refused. Every refusal is a
:class:`~pilothouse.serving.errors.BadRequestError` naming the input.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pilothouse.serving.errors import BadRequestError

FIXED: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("u1"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
"""Wire dtype of each fixed-size V2 datatype (``BOOL`` is checked to be 0/1, then viewed)."""
DATATYPES = frozenset({*FIXED, "BYTES"})
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class Tensor:
    """One input tensor: its values as a JSON list, or already decoded into an array."""

    name: str
    shape: tuple[int, ...]
    datatype: str
    data: Any
    """A (nested) JSON list, or an ndarray of ``shape`` decoded from raw bytes."""


def from_raw(name: str, shape: tuple[int, ...], datatype: str, raw: Any) -> npt.NDArray[Any]:
    """Decode ``raw`` (bytes or a memoryview) into an array of ``shape``."""
    count = math.prod(shape)
    if datatype == "BYTES":
        return _bytes_elements(name, raw, count).reshape(shape)
    dtype = FIXED[datatype]
    if len(raw) != count * dtype.itemsize:
        raise BadRequestError(
            f"input {name!r}: {datatype} of shape {list(shape)} is {count:,} x "
            f"{dtype.itemsize} bytes, but {len(raw):,} bytes were sent",
        )
    values: npt.NDArray[Any] = np.frombuffer(raw, dtype=dtype)
    if datatype == "BOOL":
        if values.size and values.max() > 1:
            raise BadRequestError(f"input {name!r}: BOOL bytes must be 0 or 1")
        values = values.view(np.bool_)
    return values.reshape(shape)


def to_raw(values: npt.NDArray[Any], datatype: str) -> bytes:
    """The raw bytes of ``values`` as ``datatype``."""
    if datatype == "BYTES":
        return _bytes_raw(values.ravel().tolist())
    encoded: bytes = np.ascontiguousarray(values, dtype=FIXED[datatype]).tobytes()
    return encoded


def _bytes_raw(items: list[Any]) -> bytes:
    """``BYTES`` elements, each after its 4-byte length.

    Predictions repeat a few class labels: when every element is a ``str`` (or
    every one ``bytes``), each distinct value is encoded once and the answer
    joins those, which costs a dictionary lookup per element instead of an
    encode and a pack. Mixed elements are encoded one by one: ``1``, ``True``
    and ``1.0`` (or ``0.0`` and ``-0.0``) are equal keys but different text.
    """
    kinds = set(map(type, items))
    if kinds == {str} or kinds == {bytes}:
        encoded = {value: _prefixed(value) for value in set(items)}
        return b"".join(map(encoded.__getitem__, items))
    return b"".join(map(_prefixed, items))


def _prefixed(value: Any) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode()
    return _LENGTH.pack(len(data)) + data


def _bytes_elements(name: str, raw: Any, count: int) -> npt.NDArray[np.object_]:
    view = memoryview(raw)
    out: list[str] = []
    offset = 0
    end = len(view)
    while offset < end:
        if len(out) == count:
            raise BadRequestError(
                f"input {name!r}: {end - offset:,} bytes left after the {count:,} BYTES elements "
                "the shape holds"
            )
        if offset + 4 > end:
            raise BadRequestError(f"input {name!r}: BYTES element {len(out)} has a cut length")
        (size,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if size > end - offset:
            raise BadRequestError(
                f"input {name!r}: BYTES element {len(out)} claims {size:,} bytes, "
                f"only {end - offset:,} remain"
            )
        try:
            out.append(str(view[offset : offset + size], "utf-8"))
        except UnicodeDecodeError:
            raise BadRequestError(
                f"input {name!r}: BYTES element {len(out)} is not UTF-8 text"
            ) from None
        offset += size
    if len(out) != count:
        raise BadRequestError(
            f"input {name!r}: shape holds {count:,} BYTES elements, {len(out):,} were sent"
        )
    values = np.empty(count, dtype=object)
    values[:] = out
    return values
