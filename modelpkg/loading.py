"""Loading a package's model and calling it with one uniform contract.

:func:`load_model` picks the format's loader (importing its framework only
now), translates whatever the framework raises into
:class:`~pilothouse.modelpkg.errors.ModelLoadError`, and wraps the result in a
:class:`LoadedModel` whose :meth:`~LoadedModel.predict` always answers one
value per row (and, for a classifier that can, one probability per class in
the order of ``target.classes``) — or raises
:class:`~pilothouse.modelpkg.errors.ModelPredictError` saying what was wrong.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pilothouse.modelpkg.errors import ModelLoadError, ModelPredictError, PackageError
from pilothouse.modelpkg.formats import Predictor
from pilothouse.modelpkg.manifest import Manifest, ModelFormat
from pilothouse.modelpkg.packing import read_directory
from pilothouse.modelpkg.tabular import Schema, Table

_LOADERS = {
    ModelFormat.SKLEARN: "pilothouse.modelpkg.formats.sklearn",
    ModelFormat.ONNX: "pilothouse.modelpkg.formats.onnx",
    ModelFormat.PYTHON: "pilothouse.modelpkg.formats.python",
    ModelFormat.MLFLOW: "pilothouse.modelpkg.formats.mlflow",
}


@dataclass(frozen=True, slots=True)
class Prediction:
    """A model's answer for a batch of rows."""

    values: npt.NDArray[Any]
    """One prediction per row: labels (classifier) or float64 numbers (regressor)."""
    proba: npt.NDArray[np.float64] | None = None
    """``[rows, classes]`` probabilities in ``target.classes`` order, when asked and supported."""


class LoadedModel:
    """A package's model, ready to predict."""

    def __init__(self, manifest: Manifest, predictor: Predictor, package_dir: Path) -> None:
        self.manifest = manifest
        self.predictor = predictor
        self.package_dir = package_dir
        self.schema = Schema(manifest.features)
        self.classes = tuple(manifest.target.classes or ())

    @property
    def supports_proba(self) -> bool:
        """Whether probabilities can be asked for."""
        return self.manifest.is_classifier and self.predictor.supports_proba

    def samples(self) -> Table | None:
        """The manifest's sample rows as a table, or ``None`` when it has none."""
        if not self.manifest.samples:
            return None
        return self.schema.from_rows(list(self.manifest.samples))

    def predict(self, matrix: npt.NDArray[Any], *, proba: bool = False) -> Prediction:
        """Predict ``matrix`` (validated, manifest order); ``proba`` when supported."""
        rows = int(matrix.shape[0])
        want_proba = proba and self.supports_proba
        try:
            if want_proba:
                raw, raw_proba = self.predictor.predict_with_proba(matrix)
            else:
                raw, raw_proba = self.predictor.predict(matrix), None
        except PackageError:
            raise
        except Exception as exc:
            raise ModelPredictError(f"the model raised {type(exc).__name__}: {exc}") from exc
        return Prediction(self._values(raw, rows), self._proba(raw_proba, rows))

    def close(self) -> None:
        """Release the model's resources."""
        self.predictor.close()

    def _values(self, raw: Any, rows: int) -> npt.NDArray[Any]:
        values = np.asarray(raw)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.shape != (rows,):
            raise ModelPredictError(
                f"the model answered shape {list(values.shape)} for {rows} rows; expected [{rows}]"
            )
        if not self.manifest.is_classifier:
            try:
                return values.astype(np.float64, copy=False)
            except (TypeError, ValueError):
                raise ModelPredictError(
                    "a regressor answered values that are not numbers"
                ) from None
        return values

    def _proba(self, raw: Any, rows: int) -> npt.NDArray[np.float64] | None:
        if raw is None:
            return None
        try:
            proba = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise ModelPredictError("predict_proba answered values that are not numbers") from None
        if proba.shape != (rows, len(self.classes)):
            raise ModelPredictError(
                f"predict_proba answered shape {list(proba.shape)}; expected "
                f"[{rows}, {len(self.classes)}] (one column per class)"
            )
        return proba


def load_model(
    package_dir: str | os.PathLike[str], manifest: Manifest | None = None
) -> LoadedModel:
    """Load the model of an unpacked package directory (validating it unless ``manifest`` is given).

    Raises :class:`~pilothouse.modelpkg.errors.MissingExtraError` when the framework is not
    installed and :class:`~pilothouse.modelpkg.errors.ModelLoadError` for anything the
    loader raised.
    """
    root = Path(package_dir)
    manifest = manifest or read_directory(root)
    module = importlib.import_module(_LOADERS[manifest.format])
    try:
        predictor: Predictor = module.load(root, manifest)
    except PackageError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"loading {manifest.format.value} artifact {manifest.artifact!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return LoadedModel(manifest, predictor, root)
