"""One loader per package format, each importing its framework only when called.

A format module exposes ``load(package_dir, manifest) -> Predictor``. The
framework (scikit-learn, onnxruntime, MLflow) is an optional extra: importing
this package costs nothing, and a missing framework surfaces as a
:class:`~pilothouse.modelpkg.errors.MissingExtraError` that names the extra to install.
"""

from __future__ import annotations

import abc
import importlib
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from pilothouse.modelpkg.errors import MissingExtraError, ModelPredictError


class Predictor(abc.ABC):
    """A loaded model, called with a validated ``[rows, features]`` matrix in manifest order."""

    supports_proba: bool = False
    """Whether :meth:`predict_proba` gives one probability column per class."""

    @abc.abstractmethod
    def predict(self, matrix: npt.NDArray[Any]) -> Any:
        """One prediction per row (labels for a classifier, numbers for a regressor)."""

    def predict_proba(self, matrix: npt.NDArray[Any]) -> Any:
        """Probabilities ``[rows, classes]`` in the order of ``target.classes``."""
        raise ModelPredictError("this model does not give probabilities")

    def predict_with_proba(self, matrix: npt.NDArray[Any]) -> tuple[Any, Any]:
        """Both at once; formats that compute them together override this."""
        return self.predict(matrix), self.predict_proba(matrix)

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release what the model holds (sessions, modules); the default holds nothing."""


def require(module: str, *, package_format: str, extra: str) -> ModuleType:
    """Import a framework module, or raise :class:`MissingExtraError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or module
        raise MissingExtraError(package_format, extra, missing.split(".")[0]) from None


def column_order(model_classes: Any, manifest_classes: list[str]) -> npt.NDArray[np.intp] | None:
    """Indices that put a model's probability columns in manifest order (``None``: already are).

    Labels are compared as strings, so a model trained on ``0``/``1`` matches
    ``classes: ["0", "1"]``. Raises ``ValueError`` when the two sets differ.
    """
    have = [str(c) for c in model_classes]
    if sorted(have) != sorted(manifest_classes):
        raise ValueError(
            f"the model's classes {have} are not the manifest's target.classes {manifest_classes}"
        )
    order = np.array([have.index(c) for c in manifest_classes], dtype=np.intp)
    return None if (order == np.arange(len(order))).all() else order
