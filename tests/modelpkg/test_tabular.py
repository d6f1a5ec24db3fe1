"""Rows become validated matrices, and bad input names the row and the feature."""

from __future__ import annotations

import numpy as np
import pytest

from pilothouse.modelpkg import Feature, FeatureType, InputError, Schema

NUMERIC = Schema([Feature(name="a"), Feature(name="b", type=FeatureType.INTEGER)])
MIXED = Schema(
    [
        Feature(name="x"),
        Feature(name="color", type=FeatureType.STRING),
        Feature(name="flag", type=FeatureType.BOOLEAN, nullable=True),
    ]
)


def test_rows_in_feature_order_ignoring_extra_keys() -> None:
    table = NUMERIC.from_rows([{"b": 2, "a": 1.5, "id": "r1"}, {"a": "2.5", "b": 3}])
    assert table.matrix.dtype == np.float64
    assert table.matrix.tolist() == [[1.5, 2.0], [2.5, 3.0]]
    assert table.numeric is table.matrix and table.strings is None


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"a": 1}], "row 0: missing feature 'b'"),
        ([{"a": 1, "b": 1}, {"a": "x", "b": 1}], "row 1, feature 'a': expected a number, got 'x'"),
        ([{"a": 1, "b": 1.5}], "row 0, feature 'b': expected an integer, got 1.5"),
        ([{"a": None, "b": 1}], "row 0, feature 'a': expected a number, got null"),
        ([{"a": [1], "b": 1}], "feature 'a': expected a number"),
        ([[1, 2]], "row 0: expected an object keyed by feature name, got a list"),
        ([], "no rows given"),
    ],
)
def test_bad_rows(rows: list[object], message: str) -> None:
    with pytest.raises(InputError) as info:
        NUMERIC.from_rows(rows)
    assert message in str(info.value)


def test_the_error_carries_row_feature_and_expectation() -> None:
    with pytest.raises(InputError) as info:
        NUMERIC.from_rows([{"a": 1, "b": 2}, {"a": 1, "b": "seven"}])
    assert (info.value.row, info.value.feature, info.value.expected) == (1, "b", "an integer")


def test_matrix_shape_is_checked() -> None:
    assert NUMERIC.from_matrix([[1, 2], [3, 4]]).rows == 2
    with pytest.raises(InputError, match=r"expected shape \[rows, 2\] .*\(a, b\), got \[1, 3\]"):
        NUMERIC.from_matrix([[1, 2, 3]])


def test_columns() -> None:
    table = NUMERIC.from_columns({"a": [1.0, 2.0], "b": [[3], [4]]})
    assert table.matrix.tolist() == [[1.0, 3.0], [2.0, 4.0]]
    with pytest.raises(InputError, match="missing input for feature 'b'"):
        NUMERIC.from_columns({"a": [1.0]})
    with pytest.raises(InputError, match="different numbers of rows"):
        NUMERIC.from_columns({"a": [1.0], "b": [1, 2]})


def test_mixed_types_and_nullable() -> None:
    table = MIXED.from_rows(
        [{"x": 1, "color": "red", "flag": True}, {"x": 2, "color": "blue", "flag": None}]
    )
    assert table.matrix.dtype == object
    assert table.strings is not None and table.strings[:, 0].tolist() == ["red", "blue"]
    assert table.numeric[0].tolist() == [1.0, 1.0]
    assert np.isnan(table.numeric[1, 1])
    with pytest.raises(InputError, match="row 0, feature 'color': expected a string, got 3"):
        MIXED.from_rows([{"x": 1, "color": 3, "flag": False}])
    with pytest.raises(
        InputError, match=r"feature 'flag': expected true or false \(or 0/1\) or null, got 2"
    ):
        MIXED.from_rows([{"x": 1, "color": "red", "flag": 2}])


def test_csv() -> None:
    table = NUMERIC.from_csv("id,b,a\nr1,1,0.5\nr2,2,1.5\n")
    assert table.matrix.tolist() == [[0.5, 1.0], [1.5, 2.0]]
    with pytest.raises(InputError, match="CSV header has no column for feature 'b'"):
        NUMERIC.from_csv("a\n1\n")
    with pytest.raises(InputError, match="row 1, feature 'a': expected a number, got 'x'"):
        NUMERIC.from_csv("a,b\n1,2\nx,3\n")
    with pytest.raises(InputError, match="CSV row 0: expected 2 cells"):
        NUMERIC.from_csv("a,b\n1\n")
    with pytest.raises(InputError, match="feature 'a': expected a number, got null"):
        NUMERIC.from_csv("a,b\n,3\n")
    mixed = MIXED.from_csv("x,color,flag\n1,red,\n")
    assert np.isnan(mixed.numeric[0, 1]) and mixed.matrix[0, 1] == "red"
