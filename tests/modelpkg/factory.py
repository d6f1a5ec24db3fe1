"""Model packages for tests: the trained iris examples, and small ones written on the spot."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "models"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSES = ["setosa", "versicolor", "virginica"]
SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
VIRGINICA = {"sepal_length": 7.6, "sepal_width": 3.0, "petal_length": 6.6, "petal_width": 2.1}


def train_iris(out: Path) -> dict[str, Path]:
    """Run examples/models/train_iris.py into ``out`` (fresh artifacts for this sklearn)."""
    spec = importlib.util.spec_from_file_location("train_iris", EXAMPLES / "train_iris.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--out", str(out)])
    return {
        "v1": out / "iris-1.0.0",
        "v2": out / "iris-2.0.0",
        "rules": out / "iris-rules-1.0.0",
    }


def manifest(**overrides: Any) -> dict[str, Any]:
    """A valid iris manifest as a dict (python format by default)."""
    doc: dict[str, Any] = {
        "manifest_version": 1,
        "name": "iris-test",
        "version": "1.0.0",
        "format": "python",
        "artifact": "model.py",
        "target": {"type": "classification", "name": "species", "classes": CLASSES},
        "features": [{"name": f} for f in FEATURES],
        "samples": [SETOSA, VIRGINICA],
    }
    doc.update(overrides)
    return doc


RULES_CODE = """
import time
import numpy as np

CLASSES = np.array(["setosa", "versicolor", "virginica"], dtype=object)


class Model:
    def __init__(self, package_dir):
        self.package_dir = package_dir
        {init}

    def predict(self, rows):
        {predict}
        rows = np.asarray(rows, dtype=float)
        return CLASSES[np.where(rows[:, 2] < 2.5, 0, np.where(rows[:, 3] > 1.6, 2, 1))]
"""


def python_package(
    path: Path,
    *,
    init: str = "pass",
    predict: str = "pass",
    code: str | None = None,
    files: dict[str, bytes] | None = None,
    **manifest_overrides: Any,
) -> Path:
    """Write a ``python``-format package whose model may be made to fail or be slow."""
    path.mkdir(parents=True, exist_ok=True)
    source = code if code is not None else RULES_CODE.format(init=init, predict=predict)
    (path / "model.py").write_text(textwrap.dedent(source))
    (path / "model.yaml").write_text(
        yaml.safe_dump(manifest(**manifest_overrides), sort_keys=False)
    )
    for name, data in (files or {}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return path


def linear_package(path: Path, n_features: int = 20, *, seed: int = 7) -> Path:
    """A logistic regression on ``n_features`` numeric features (predict costs microseconds)."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from pilothouse.modelpkg import Feature, Manifest, dump_manifest
    from pilothouse.modelpkg.profiling import baseline

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2000, n_features))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] - x[:, 2] > 0, "yes", "no")
    model = LogisticRegression(max_iter=500).fit(x, y)
    features = [Feature(name=f"x{i:02d}") for i in range(n_features)]
    path.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path / "model.joblib")
    doc = Manifest.model_validate(
        {
            "name": "linear",
            "version": "1.0.0",
            "format": "sklearn",
            "artifact": "model.joblib",
            "target": {"type": "classification", "name": "label", "classes": ["no", "yes"]},
            "features": features,
            "baseline": baseline(features, x, model.predict(x), classifier=True),
            "samples": [
                {f.name: round(float(v), 4) for f, v in zip(features, row, strict=True)}
                for row in x[:5]
            ],
        }
    )
    (path / "model.yaml").write_bytes(dump_manifest(doc))
    return path


_TRAINED: dict[str, Path] = {}


def trained_iris(base: Path) -> dict[str, Path]:
    """The iris packages, trained once per test process (shared by tests/modelpkg and serving)."""
    if not _TRAINED:
        _TRAINED.update(train_iris(base))
    return dict(_TRAINED)
