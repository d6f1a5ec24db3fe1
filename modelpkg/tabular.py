"""Rows in, a matrix out: the conversion every prediction request pays for.

Input arrives as JSON rows (objects keyed by feature name), as a V2 tensor
(a ``[rows, features]`` list of lists), as one V2 column per feature, or as
CSV text. Each becomes a :class:`Table`: the matrix the model takes (float64
when every feature is numeric, else an object matrix with floats and
strings), plus the numeric block on its own for monitoring.

The conversion is vectorized: rows are turned into tuples by
``operator.itemgetter`` (a C loop), the tuples into an array by one
``np.array`` call, and the checks — non-finite values, integers that are not
whole, booleans that are not 0/1 — are whole-array operations. Only when a
check fails do we walk the cells in Python, to name the first bad row and
feature in the error. JSON numbers given as strings (``"5.1"``) are accepted
for numeric features, as CSV requires anyway.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from pilothouse.modelpkg.errors import InputError
from pilothouse.modelpkg.manifest import Feature, FeatureType

FloatMatrix = npt.NDArray[np.float64]
ObjectMatrix = npt.NDArray[np.object_]

_EXPECTED = {
    FeatureType.FLOAT: "a number",
    FeatureType.INTEGER: "an integer",
    FeatureType.BOOLEAN: "true or false (or 0/1)",
    FeatureType.STRING: "a string",
}


@dataclass(frozen=True, slots=True)
class Table:
    """Validated input rows."""

    matrix: npt.NDArray[Any]
    """What the model gets: ``[rows, features]`` in manifest order (float64 or object)."""
    numeric: FloatMatrix
    """The numeric features only, as float64 (the same array as ``matrix`` when all are)."""
    strings: ObjectMatrix | None
    """The string features only, or ``None`` when there are none."""

    @property
    def rows(self) -> int:
        """Number of rows."""
        return int(self.matrix.shape[0])


class Schema:
    """Converts and validates input against a manifest's features; built once per model."""

    def __init__(self, features: Sequence[Feature]) -> None:
        self.features = tuple(features)
        self.names = tuple(f.name for f in features)
        self.numeric_idx = [i for i, f in enumerate(features) if f.type.numeric]
        self.string_idx = [i for i, f in enumerate(features) if not f.type.numeric]
        self.numeric_names = tuple(self.names[i] for i in self.numeric_idx)
        self.string_names = tuple(self.names[i] for i in self.string_idx)
        self.all_numeric = not self.string_idx
        numeric = [features[i] for i in self.numeric_idx]
        self._nullable = np.array([f.nullable for f in numeric], dtype=bool)
        self._int_cols = [j for j, f in enumerate(numeric) if f.type is FeatureType.INTEGER]
        self._bool_cols = [j for j, f in enumerate(numeric) if f.type is FeatureType.BOOLEAN]
        self._getter: Callable[[Any], tuple[Any, ...]]
        if len(self.names) == 1:
            only = self.names[0]
            self._getter = lambda row: (row[only],)
        else:
            self._getter = itemgetter(*self.names)

    # -- entry points -------------------------------------------------------------------

    def from_rows(self, rows: Any) -> Table:
        """Rows as objects keyed by feature name (other keys are ignored)."""
        if not isinstance(rows, list):
            raise InputError(
                f"'rows' must be a list of objects keyed by feature name, got {_kind(rows)}"
            )
        _require_rows(len(rows))
        try:
            tuples = list(map(self._getter, rows))
        except (KeyError, TypeError, IndexError):
            raise self._explain_rows(rows) from None
        return self.from_matrix(tuples, source="rows")

    def from_matrix(self, data: Any, *, source: str = "input") -> Table:
        """A ``[rows, features]`` sequence of sequences (or array) in manifest order."""
        if self.all_numeric:
            try:
                matrix = np.array(data, dtype=np.float64)
            except (ValueError, TypeError):
                raise self._explain_cells(data, range(len(self.names)), source) from None
            self._check_shape(matrix.shape, source)
            self._check_numeric(matrix, lambda r, c: data[r][c])
            return Table(matrix, matrix, None)
        try:
            obj = np.array(data, dtype=object)
        except (ValueError, TypeError):
            raise self._shape_error(source, "a list of rows, each a list of values") from None
        self._check_shape(obj.shape, source)
        return self._from_objects(obj, lambda r, c: obj[r, c])

    def from_columns(self, columns: Mapping[str, Any]) -> Table:
        """One 1-D sequence per feature, keyed by name (V2 per-feature inputs)."""
        missing = [n for n in self.names if n not in columns]
        if missing:
            raise InputError(
                f"missing input for feature {missing[0]!r}; expected one input per feature: "
                f"{', '.join(self.names)}",
                feature=missing[0],
            )
        arrays = []
        for i, name in enumerate(self.names):
            dtype = np.float64 if i in self.numeric_idx else object
            try:
                col = np.asarray(columns[name], dtype=dtype)
            except (ValueError, TypeError):
                raise self._explain_cells(
                    [[v] for v in columns[name]], [i], f"input {name!r}", column=i
                ) from None
            if col.ndim == 2 and col.shape[1] == 1:
                col = col[:, 0]
            if col.ndim != 1:
                raise InputError(
                    f"input {name!r}: expected shape [rows] or [rows, 1], got {list(col.shape)}",
                    feature=name,
                )
            arrays.append(col)
        lengths = {len(a) for a in arrays}
        if len(lengths) != 1:
            raise InputError(f"inputs have different numbers of rows: {sorted(lengths)}")
        _require_rows(len(arrays[0]))
        if self.all_numeric:
            matrix = np.column_stack(arrays).astype(np.float64, copy=False)
            self._check_numeric(matrix, lambda r, c: matrix[r, c])
            return Table(matrix, matrix, None)
        obj = np.empty((len(arrays[0]), len(arrays)), dtype=object)
        for i, col in enumerate(arrays):
            obj[:, i] = col
        return self._from_objects(obj, lambda r, c: obj[r, c])

    def from_csv(self, text: str) -> Table:
        """CSV with a header row naming the features (in any order; extra columns ignored)."""
        records = [r for r in csv.reader(io.StringIO(text)) if r]
        if not records:
            raise InputError("empty CSV: expected a header row naming the features, then rows")
        header = [h.strip() for h in records[0]]
        body = records[1:]
        position = {name: i for i, name in enumerate(header)}
        missing = [n for n in self.names if n not in position]
        if missing:
            raise InputError(
                f"CSV header has no column for feature {missing[0]!r} "
                f"(expected columns: {', '.join(self.names)})",
                feature=missing[0],
            )
        _require_rows(len(body))
        try:
            cells = np.array(body, dtype=str)
        except ValueError:
            raise self._ragged(body, len(header)) from None
        if cells.ndim != 2 or cells.shape[1] != len(header):
            raise self._ragged(body, len(header))
        picked = cells[:, [position[n] for n in self.names]]
        empty = picked == ""
        obj = picked.astype(object)
        if empty.any():
            obj[empty] = None
        numeric_block = picked[:, self.numeric_idx]
        nulls = empty[:, self.numeric_idx]
        if nulls.any():
            numeric_block = numeric_block.copy()
            numeric_block[nulls] = "nan"
        try:
            numeric = numeric_block.astype(np.float64)
        except ValueError:
            raise self._explain_cells(obj, self.numeric_idx, "CSV") from None
        self._check_numeric(numeric, lambda r, c: obj[r, self.numeric_idx[c]])
        if self.all_numeric:
            return Table(numeric, numeric, None)
        strings = obj[:, self.string_idx]
        self._check_strings(strings)
        obj[:, self.numeric_idx] = numeric
        return Table(obj, numeric, strings)

    # -- checks ---------------------------------------------------------------------------

    def _from_objects(self, obj: ObjectMatrix, cell: Callable[[int, int], Any]) -> Table:
        try:
            numeric = obj[:, self.numeric_idx].astype(np.float64)
        except (ValueError, TypeError):
            raise self._explain_cells(obj, self.numeric_idx, "input") from None
        self._check_numeric(numeric, lambda r, c: cell(r, self.numeric_idx[c]))
        strings = obj[:, self.string_idx]
        self._check_strings(strings)
        matrix = obj.copy()
        matrix[:, self.numeric_idx] = numeric
        return Table(matrix, numeric, strings)

    def _check_shape(self, shape: tuple[int, ...], source: str) -> None:
        if len(shape) == 2 and shape[1] == len(self.names):
            _require_rows(shape[0])
            return
        if len(shape) == 2 and shape[0] == 0:
            _require_rows(0)
        raise InputError(
            f"{source}: expected shape [rows, {len(self.names)}] with the features in order "
            f"({', '.join(self.names)}), got {list(shape)}"
        )

    def _check_numeric(self, numeric: FloatMatrix, cell: Callable[[int, int], Any]) -> None:
        """Whole-array checks; the slow path only runs to name the first bad cell."""
        if numeric.size == 0:
            return
        bad = ~np.isfinite(numeric)
        if bad.any():
            bad &= ~(np.isnan(numeric) & self._nullable[None, :])
            if bad.any():
                self._raise_at(bad, cell, numeric)
        if self._int_cols:
            block = numeric[:, self._int_cols]
            wrong = (block != np.trunc(block)) & ~np.isnan(block)
            if wrong.any():
                self._raise_at(_widen(wrong, self._int_cols, numeric.shape), cell, numeric)
        if self._bool_cols:
            block = numeric[:, self._bool_cols]
            wrong = (block != 0) & (block != 1) & ~np.isnan(block)
            if wrong.any():
                self._raise_at(_widen(wrong, self._bool_cols, numeric.shape), cell, numeric)

    def _raise_at(
        self, bad: npt.NDArray[np.bool_], cell: Callable[[int, int], Any], numeric: FloatMatrix
    ) -> None:
        r, c = (int(v) for v in np.argwhere(bad)[0])
        feature = self.features[self.numeric_idx[c]]
        try:
            got = cell(r, c)
        except (IndexError, KeyError, TypeError):
            got = float(numeric[r, c])
        raise _bad_value(r, feature, got)

    def _check_strings(self, strings: ObjectMatrix) -> None:
        kinds = set(map(type, strings.ravel().tolist()))
        if kinds <= {str}:
            return
        for j, i in enumerate(self.string_idx):
            feature = self.features[i]
            for r, value in enumerate(strings[:, j].tolist()):
                if not isinstance(value, str) and not (value is None and feature.nullable):
                    raise _bad_value(r, feature, value)

    # -- explaining failures (slow path) ----------------------------------------------------

    def _explain_rows(self, rows: list[Any]) -> InputError:
        for r, row in enumerate(rows):
            if not isinstance(row, dict):
                return InputError(
                    f"row {r}: expected an object keyed by feature name, got {_kind(row)}", row=r
                )
            for feature in self.features:
                if feature.name not in row:
                    return InputError(
                        f"row {r}: missing feature {feature.name!r} "
                        f"(expected {_expected(feature)})",
                        feature=feature.name,
                        row=r,
                        expected=_expected(feature),
                    )
        return InputError("rows could not be read")

    def _explain_cells(
        self, data: Any, columns: Sequence[int], source: str, *, column: int | None = None
    ) -> InputError:
        for r, row in enumerate(data):
            if not isinstance(row, list | tuple | np.ndarray) or len(row) != (
                1 if column is not None else len(self.names)
            ):
                return self._shape_error(source, f"a list of {len(self.names)} values")
            for c in columns:
                value = row[0] if column is not None else row[c]
                if not _accepts(self.features[c], value):
                    return _bad_value(r, self.features[c], value)
        return self._shape_error(source, "a list of rows")

    def _shape_error(self, source: str, what: str) -> InputError:
        return InputError(
            f"{source}: expected {what}; features in order: {', '.join(self.names)}",
        )

    @staticmethod
    def _ragged(body: list[list[str]], width: int) -> InputError:
        for r, row in enumerate(body):
            if len(row) != width:
                return InputError(
                    f"CSV row {r}: expected {width} cells (as many as the header), got {len(row)}",
                    row=r,
                )
        return InputError("CSV rows could not be read")


def _require_rows(n: int) -> None:
    if n == 0:
        raise InputError("no rows given: expected at least one row")


def _widen(
    part: npt.NDArray[np.bool_], cols: list[int], shape: tuple[int, ...]
) -> npt.NDArray[np.bool_]:
    full = np.zeros(shape, dtype=bool)
    full[:, cols] = part
    return full


def _expected(feature: Feature) -> str:
    text = _EXPECTED[feature.type]
    return f"{text} or null" if feature.nullable else text


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    kinds: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    return kinds.get(type(value), repr(value)[:80])


def _accepts(feature: Feature, value: Any) -> bool:
    if value is None or (isinstance(value, float) and value != value):
        return feature.nullable
    if feature.type is FeatureType.STRING:
        return isinstance(value, str)
    if isinstance(value, list | dict | tuple):
        return False
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    if number in (float("inf"), float("-inf")):
        return False
    if feature.type is FeatureType.INTEGER:
        return number.is_integer()
    if feature.type is FeatureType.BOOLEAN:
        return number in (0.0, 1.0)
    return True


def _bad_value(row: int, feature: Feature, value: Any) -> InputError:
    """The error naming the row, the feature, what it expects and what it got."""
    shown = "null" if value is None else repr(value)
    if isinstance(value, float) and value != value:
        shown = "null"
    expected = _expected(feature)
    return InputError(
        f"row {row}, feature {feature.name!r}: expected {expected}, got {shown[:80]}",
        feature=feature.name,
        row=row,
        expected=expected,
    )
