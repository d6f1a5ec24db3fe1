"""``onnx``: an ONNX graph run by onnxruntime on the CPU.

The graph takes either one ``[rows, features]`` tensor (what skl2onnx makes
from a single ``FloatTensorType``) or one ``[rows, 1]`` tensor per feature,
named after it. The first output is the prediction; for a classifier the
second, when present, is the probabilities — a tensor (convert with
``options={"zipmap": False}``) or, more slowly, ZipMap's list of dicts. Both
come from a single ``run``. The session uses one intra-op thread: the server
runs many models side by side and parallelism comes from requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pilothouse.modelpkg.errors import ModelLoadError
from pilothouse.modelpkg.formats import Predictor, require
from pilothouse.modelpkg.manifest import Manifest

_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}


def load(package_dir: Path, manifest: Manifest) -> Predictor:
    """Open an inference session and map the graph's inputs to the manifest's features."""
    ort = require("onnxruntime", package_format="onnx", extra="onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(
        str(package_dir / manifest.artifact),
        sess_options=options,
        providers=["CPUExecutionProvider"],
    )
    inputs = session.get_inputs()
    names = list(manifest.feature_names)
    feeds: list[tuple[str, Any, int | None]]
    if len(inputs) == 1:
        width = inputs[0].shape[-1] if inputs[0].shape else None
        if isinstance(width, int) and width != len(names):
            raise ModelLoadError(
                f"{manifest.artifact}: the graph takes {width} features, the manifest lists "
                f"{len(names)}"
            )
        feeds = [(inputs[0].name, _dtype(inputs[0].type), None)]
    elif sorted(i.name for i in inputs) == sorted(names):
        by_name = {i.name: i for i in inputs}
        feeds = [(n, _dtype(by_name[n].type), col) for col, n in enumerate(names)]
    else:
        raise ModelLoadError(
            f"{manifest.artifact}: the graph's inputs {[i.name for i in inputs]} are neither one "
            f"[rows, features] tensor nor one tensor per feature ({names})"
        )
    outputs = [o.name for o in session.get_outputs()]
    proba = outputs[1] if manifest.is_classifier and len(outputs) > 1 else None
    return OnnxPredictor(session, feeds, outputs[0], proba, manifest.target.classes or [])


def _dtype(onnx_type: str) -> Any:
    try:
        return _DTYPES[onnx_type]
    except KeyError:
        raise ModelLoadError(f"unsupported ONNX input type {onnx_type}") from None


class OnnxPredictor(Predictor):
    """Feeds the matrix (or its columns) and reads the label and probability outputs."""

    def __init__(
        self,
        session: Any,
        feeds: list[tuple[str, Any, int | None]],
        label: str,
        proba: str | None,
        classes: list[str],
    ) -> None:
        self.session = session
        self._feeds = feeds
        self._label = label
        self._proba = proba
        self._classes = classes
        self.supports_proba = proba is not None

    def _feed(self, matrix: npt.NDArray[Any]) -> dict[str, Any]:
        if len(self._feeds) == 1 and self._feeds[0][2] is None:
            name, dtype, _ = self._feeds[0]
            return {name: np.ascontiguousarray(matrix, dtype=dtype)}
        return {
            name: np.ascontiguousarray(matrix[:, [col or 0]], dtype=dtype)
            for name, dtype, col in self._feeds
        }

    def predict(self, matrix: npt.NDArray[Any]) -> Any:
        """The graph's first output."""
        return self.session.run([self._label], self._feed(matrix))[0]

    def predict_proba(self, matrix: npt.NDArray[Any]) -> Any:
        """The graph's second output, as a ``[rows, classes]`` array."""
        return self.predict_with_proba(matrix)[1]

    def predict_with_proba(self, matrix: npt.NDArray[Any]) -> tuple[Any, Any]:
        """Both outputs from one run."""
        if self._proba is None:
            return super().predict_with_proba(matrix)
        labels, proba = self.session.run([self._label, self._proba], self._feed(matrix))
        if isinstance(proba, list):  # ZipMap: one {class: p} per row
            keys = _zipmap_keys(proba[0] if proba else {}, self._classes)
            proba = np.array([[row[k] for k in keys] for row in proba], dtype=np.float64)
        return labels, proba


def _zipmap_keys(row: dict[Any, float], classes: list[str]) -> list[Any]:
    by_text = {str(k): k for k in row}
    return [by_text[c] for c in classes] if set(by_text) == set(classes) else list(row)
