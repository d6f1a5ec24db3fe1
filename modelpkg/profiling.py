"""Computing a baseline from training data, for whoever builds a package.

Drift is measured by binning what a deployment sees with the *training*
data's bins, so the bins are fixed here, once: equal-width over the training
range for numeric features (values outside later land in the edge bins),
category fractions for strings, and the same for predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pilothouse.modelpkg.manifest import Baseline, Categories, Feature, Histogram


def histogram(values: npt.ArrayLike, bins: int = 10) -> Histogram:
    """Equal-width bins over the finite values' range, with each bin's fraction."""
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    if data.size == 0:
        raise ValueError("no finite values to bin")
    low, high = float(data.min()), float(data.max())
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, bins + 1)
    counts, _ = np.histogram(data, bins=edges)
    fractions = counts / counts.sum()
    return Histogram(
        edges=[round(float(e), 6) for e in edges],
        fractions=_rounded(fractions.tolist()),
    )


def categories(values: Sequence[Any]) -> Categories:
    """The fraction of each distinct value (as text)."""
    labels, counts = np.unique(np.asarray([str(v) for v in values]), return_counts=True)
    fractions = _rounded((counts / counts.sum()).tolist())
    return Categories(categories=dict(zip(labels.tolist(), fractions, strict=True)))


def baseline(
    features: Sequence[Feature],
    matrix: npt.NDArray[Any],
    predictions: Sequence[Any] | npt.NDArray[Any] | None = None,
    *,
    classifier: bool,
    bins: int = 10,
) -> Baseline:
    """A baseline for every feature (columns of ``matrix`` in order) and the predictions."""
    per_feature: dict[str, Histogram | Categories] = {}
    for i, feature in enumerate(features):
        column = matrix[:, i]
        per_feature[feature.name] = (
            histogram(column, bins) if feature.type.numeric else categories(column.tolist())
        )
    prediction: Histogram | Categories | None = None
    if predictions is not None:
        preds = np.asarray(predictions)
        prediction = categories(preds.tolist()) if classifier else histogram(preds, bins)
    return Baseline(rows=int(matrix.shape[0]), features=per_feature, prediction=prediction)


def _rounded(fractions: list[float]) -> list[float]:
    """Round to 6 places, putting the rounding error on the largest bin so they sum to 1."""
    out = [round(f, 6) for f in fractions]
    largest = max(range(len(out)), key=out.__getitem__)
    out[largest] = round(out[largest] + 1.0 - sum(out), 6)
    return out
