"""A deliberately bad model: the rules model, except that it fails on about one row in five.

It is the example package of the README's automatic-rollback walkthrough. It
loads, warms up and answers its probe like a good model (its sample rows are
all fine), so the replacement succeeds; then, under live traffic, every row
whose sepal width is below 2.75 cm — about one iris in five (22 % of the iris
data set) — raises, as a model reading a feature from a broken lookup would. The agent's rollback
guard sees the error rate jump against the previous model and rolls back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

CLASSES = ("setosa", "versicolor", "virginica")
NARROW_SEPAL_CM = 2.75


class FlakyModel:
    """Setosa below a petal length, else virginica above a petal width — or an error."""

    def __init__(self, package_dir: Path) -> None:
        self.package_dir = package_dir

    def predict(self, rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """One species per row; raises when a row has a narrow sepal."""
        rows = np.asarray(rows, dtype=np.float64)
        narrow = rows[:, 1] < NARROW_SEPAL_CM
        if narrow.any():
            raise LookupError(f"sepal lookup failed for {int(narrow.sum())} of {len(rows)} rows")
        index = np.where(rows[:, 2] < 2.45, 0, np.where(rows[:, 3] > 1.5, 2, 1))
        return np.asarray(CLASSES, dtype=object)[index]
