"""``sklearn``: a scikit-learn estimator (or pipeline) saved with joblib or pickle.

Probability columns are put in the order of ``target.classes`` once, at load
(the estimator's ``classes_`` are sorted, the manifest's need not be), and the
estimator's feature count is checked against the manifest. An estimator fitted
on a DataFrame knows its column names and warns when given an array; it is
given a DataFrame (pandas) with the manifest's names, which must match.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pilothouse.modelpkg.errors import ModelLoadError
from pilothouse.modelpkg.formats import Predictor, column_order, require
from pilothouse.modelpkg.manifest import Manifest


def load(package_dir: Path, manifest: Manifest) -> Predictor:
    """Unpickle the estimator and check it against the manifest."""
    require("sklearn", package_format="sklearn", extra="sklearn")
    path = package_dir / manifest.artifact
    if path.suffix in (".pkl", ".pickle"):
        with path.open("rb") as fh:
            estimator = pickle.load(fh)
    else:
        joblib = require("joblib", package_format="sklearn", extra="sklearn")
        estimator = joblib.load(path)
    if not callable(getattr(estimator, "predict", None)):
        raise ModelLoadError(f"{manifest.artifact}: {type(estimator).__name__} has no predict()")
    expected = len(manifest.features)
    n_in = getattr(estimator, "n_features_in_", expected)
    if n_in != expected:
        raise ModelLoadError(
            f"{manifest.artifact}: the model takes {n_in} features, the manifest lists {expected}"
        )
    frame = _frame_maker(estimator, manifest)
    order = None
    if manifest.is_classifier and hasattr(estimator, "classes_"):
        try:
            order = column_order(estimator.classes_, manifest.target.classes or [])
        except ValueError as exc:
            raise ModelLoadError(f"{manifest.artifact}: {exc}") from None
    return SklearnPredictor(estimator, order, frame)


def _frame_maker(estimator: Any, manifest: Manifest) -> Any:
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return None
    if [str(n) for n in names] != list(manifest.feature_names):
        raise ModelLoadError(
            f"the model was fitted on columns {list(names)}, the manifest lists "
            f"{list(manifest.feature_names)} (same names, same order needed)"
        )
    pd = require("pandas", package_format="sklearn (fitted on a DataFrame)", extra="mlflow")
    columns = list(manifest.feature_names)
    return lambda matrix: pd.DataFrame(matrix, columns=columns)


_ARGMAX_OF_PROBA = frozenset({
    "LogisticRegression",  # predict: argmax of the decision function; proba is monotonic in it
    "RandomForestClassifier",  # predict: argmax of predict_proba
    "ExtraTreesClassifier",
    "DecisionTreeClassifier",
    "GradientBoostingClassifier",
    "HistGradientBoostingClassifier",
})  # fmt: skip
"""Estimators whose ``predict`` equals the argmax of ``predict_proba`` (not SVC: Platt scaling)."""


class SklearnPredictor(Predictor):
    """Calls the estimator; reorders probability columns when needed."""

    def __init__(self, estimator: Any, order: Any, frame: Any) -> None:
        self.estimator = estimator
        self._order = order
        self._frame = frame
        self.supports_proba = callable(getattr(estimator, "predict_proba", None))
        final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
        self._argmax_of_proba = (
            self.supports_proba
            and type(final).__name__ in _ARGMAX_OF_PROBA
            and type(final).__module__.startswith("sklearn.")
        )
        self._classes = np.asarray(getattr(estimator, "classes_", []))

    def predict(self, matrix: npt.NDArray[Any]) -> Any:
        """``estimator.predict``."""
        return self.estimator.predict(matrix if self._frame is None else self._frame(matrix))

    def predict_proba(self, matrix: npt.NDArray[Any]) -> Any:
        """``estimator.predict_proba``, columns in manifest order."""
        return self._ordered(self._raw_proba(matrix))

    def predict_with_proba(self, matrix: npt.NDArray[Any]) -> tuple[Any, Any]:
        """Labels and probabilities from one estimator call, where that is exact.

        Each of scikit-learn's ``predict`` and ``predict_proba`` validates its
        input again (about 130 µs for 100 rows): for the estimators listed in
        :data:`_ARGMAX_OF_PROBA` the labels are taken from the probabilities
        instead, which gives the same answer, ties included (first class wins).
        """
        if not self._argmax_of_proba:
            return super().predict_with_proba(matrix)
        raw = self._raw_proba(matrix)
        return self._classes[np.argmax(raw, axis=1)], self._ordered(raw)

    def _raw_proba(self, matrix: npt.NDArray[Any]) -> Any:
        return self.estimator.predict_proba(matrix if self._frame is None else self._frame(matrix))

    def _ordered(self, proba: Any) -> Any:
        return proba if self._order is None else proba[:, self._order]
