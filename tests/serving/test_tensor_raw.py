"""Raw tensor bytes (binary extension and gRPC): ``BYTES`` outputs encode each element as sent."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pilothouse.serving import tensors


def elements(raw: bytes) -> list[bytes]:
    """Split length-prefixed ``BYTES`` elements (the reader of the wire format, written apart)."""
    out, offset = [], 0
    while offset < len(raw):
        (size,) = struct.unpack_from("<I", raw, offset)
        out.append(raw[offset + 4 : offset + 4 + size])
        offset += 4 + size
    return out


@given(st.lists(st.sampled_from(["yes", "no", "", "ünï", "a" * 300]), max_size=200))
def test_repeated_labels_encode_in_order(labels: list[str]) -> None:
    values = np.array(labels, dtype=object if not labels else None)
    raw = tensors.to_raw(values, "BYTES")
    assert elements(raw) == [label.encode() for label in labels]
    assert tensors.from_raw("x", (len(labels),), "BYTES", raw).tolist() == labels


@pytest.mark.parametrize(
    "values",
    [
        [1, True, 1.0],  # equal as keys, three different texts
        [0.0, -0.0, 0.0],
        ["yes", b"no", "yes"],
        [b"\x00\xff", b"\x00\xff", b""],
    ],
)
def test_mixed_or_equal_keyed_elements_keep_their_own_text(values: list[Any]) -> None:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    expected = [v if isinstance(v, bytes) else str(v).encode() for v in values]
    assert elements(tensors.to_raw(array, "BYTES")) == expected


def test_a_string_array_of_two_dimensions_is_encoded_row_by_row() -> None:
    values = np.array([["a", "bb"], ["ccc", "a"]])
    assert elements(tensors.to_raw(values, "BYTES")) == [b"a", b"bb", b"ccc", b"a"]
