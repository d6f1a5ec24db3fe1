"""``mlflow``: an MLflow model directory (with ``MLmodel``), loaded as a pyfunc.

Any flavor with a ``python_function`` entry works. The pyfunc is given a
pandas DataFrame with the manifest's feature names as columns; a pyfunc has
no ``predict_proba``, so only predictions are served. The ``mlflow`` extra
installs ``mlflow-skinny`` and pandas: enough to load and run models, without
the tracking server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pilothouse.modelpkg.errors import ModelLoadError
from pilothouse.modelpkg.formats import Predictor, require
from pilothouse.modelpkg.manifest import Manifest


def load(package_dir: Path, manifest: Manifest) -> Predictor:
    """``mlflow.pyfunc.load_model`` on the artifact directory."""
    pyfunc = require("mlflow.pyfunc", package_format="mlflow", extra="mlflow")
    pd = require("pandas", package_format="mlflow", extra="mlflow")
    path = package_dir / manifest.artifact
    if not (path / "MLmodel").is_file():
        raise ModelLoadError(f"{manifest.artifact}: not an MLflow model directory (no MLmodel)")
    model = pyfunc.load_model(str(path))
    return MlflowPredictor(model, pd, list(manifest.feature_names))


class MlflowPredictor(Predictor):
    """Calls the pyfunc with a DataFrame."""

    def __init__(self, model: Any, pandas: Any, columns: list[str]) -> None:
        self.model = model
        self._pd = pandas
        self._columns = columns

    def predict(self, matrix: npt.NDArray[Any]) -> Any:
        """``pyfunc.predict(DataFrame)``, flattened to one value per row."""
        out = self.model.predict(self._pd.DataFrame(matrix, columns=self._columns))
        values = np.asarray(getattr(out, "to_numpy", lambda: out)())
        return values[:, 0] if values.ndim == 2 and values.shape[1] == 1 else values
