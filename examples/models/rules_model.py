"""The ``python``-format example model: iris species from two petal thresholds.

``train_iris.py`` copies this file into ``iris-rules-1.0.0/model.py``; the
server imports it from the package directory and constructs ``RulesModel``
with that directory, from which it reads ``thresholds.json``. Only NumPy is
used: a ``python`` package needs no framework extra.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

CLASSES = ("setosa", "versicolor", "virginica")


class RulesModel:
    """Setosa below a petal length; otherwise virginica above a petal width."""

    def __init__(self, package_dir: Path) -> None:
        thresholds = json.loads((package_dir / "thresholds.json").read_text())
        self.length_cut = float(thresholds["petal_length_setosa_below"])
        self.width_cut = float(thresholds["petal_width_virginica_above"])

    def predict(self, rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """One species per row (columns: sepal length/width, petal length/width)."""
        return np.asarray(CLASSES, dtype=object)[self._index(rows)]

    def predict_proba(self, rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Rules are certain: probability 1 for the predicted species."""
        return np.eye(len(CLASSES))[self._index(rows)]

    def _index(self, rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        rows = np.asarray(rows, dtype=np.float64)
        return np.where(
            rows[:, 2] < self.length_cut, 0, np.where(rows[:, 3] > self.width_cut, 2, 1)
        )
