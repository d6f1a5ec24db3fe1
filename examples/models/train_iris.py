"""Train the example iris models and write them as model packages.

Run ``python examples/models/train_iris.py`` (needs the ``sklearn`` extra); the
packages are written next to this script, and committed, so ``make run`` needs
no training step. Everything is seeded: the same scikit-learn version writes
the same files. The iris data set ships with scikit-learn (nothing is
downloaded).

- ``iris-1.0.0``: a scaled logistic regression (cheap; the champion in demos)
- ``iris-2.0.0``: a random forest over the same features (the replacement)
- ``iris-rules-1.0.0``: a ``python``-format package, petal-size thresholds
  learned here and read back by its ``model.py``

Each manifest carries the features, the target with its class labels, a
baseline (feature and prediction distributions of the training data, for
drift) and a few sample rows (for warm-up and health probes).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pilothouse.modelpkg import Feature, Manifest, Target, TargetType, dump_manifest
from pilothouse.modelpkg.profiling import baseline

HERE = Path(__file__).resolve().parent
FEATURES = [
    Feature(name="sepal_length"),
    Feature(name="sepal_width"),
    Feature(name="petal_length"),
    Feature(name="petal_width"),
]
SEED = 20240501


def main(argv: list[str] | None = None) -> None:
    """Train, evaluate and write the three packages."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="where to write the packages")
    args = parser.parse_args(argv)
    data = load_iris()
    labels = np.asarray(data.target_names)[data.target]
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, labels, test_size=0.2, random_state=SEED, stratify=labels
    )
    classes = sorted(set(labels.tolist()))
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=SEED))
    forest = RandomForestClassifier(n_estimators=30, max_depth=4, random_state=SEED, n_jobs=1)
    for version, model in (("1.0.0", logreg), ("2.0.0", forest)):
        model.fit(x_train, y_train)
        accuracy = float((model.predict(x_test) == y_test).mean())
        out = _fresh(args.out / f"iris-{version}")
        joblib.dump(model, out / "model.joblib", compress=3)
        manifest = _manifest(
            version, "sklearn", "model.joblib", classes, x_train, model.predict(x_train), x_test
        )
        manifest = manifest.model_copy(
            update={"description": f"{_describe(model)}; test accuracy {accuracy:.3f}"}
        )
        (out / "model.yaml").write_bytes(dump_manifest(manifest))
        print(f"{out.name}: test accuracy {accuracy:.3f}")
    _write_rules(args.out, classes, x_train, y_train, x_test)


def _manifest(
    version: str,
    fmt: str,
    artifact: str,
    classes: list[str],
    x_train: np.ndarray[Any, Any],
    predicted: np.ndarray[Any, Any],
    x_test: np.ndarray[Any, Any],
    name: str = "iris",
) -> Manifest:
    samples = [
        {f.name: round(float(v), 2) for f, v in zip(FEATURES, row, strict=True)}
        for row in x_test[:5]
    ]
    return Manifest.model_validate(
        {
            "name": name,
            "version": version,
            "format": fmt,
            "artifact": artifact,
            "target": Target(type=TargetType.CLASSIFICATION, name="species", classes=classes),
            "features": FEATURES,
            "baseline": baseline(FEATURES, x_train, predicted, classifier=True),
            "samples": samples,
        }
    )


def _describe(model: Any) -> str:
    return f"{type(model).__name__} trained on iris with scikit-learn {sklearn.__version__}"


def _write_rules(
    root: Path,
    classes: list[str],
    x_train: np.ndarray[Any, Any],
    y_train: np.ndarray[Any, Any],
    x_test: np.ndarray[Any, Any],
) -> None:
    """Learn two petal thresholds and write them with a ``python``-format predictor."""
    petal_length, petal_width = x_train[:, 2], x_train[:, 3]
    setosa_cut = float(
        (petal_length[y_train == "setosa"].max() + petal_length[y_train != "setosa"].min()) / 2
    )
    others = y_train != "setosa"
    candidates = np.unique(petal_width[others])
    errors = [
        (np.where(petal_width[others] > c, "virginica", "versicolor") != y_train[others]).sum()
        for c in candidates
    ]
    virginica_cut = float(candidates[int(np.argmin(errors))])
    thresholds = {
        "petal_length_setosa_below": round(setosa_cut, 3),
        "petal_width_virginica_above": virginica_cut,
    }
    out = _fresh(root / "iris-rules-1.0.0")
    (out / "thresholds.json").write_text(json.dumps(thresholds, indent=2) + "\n")
    shutil.copyfile(HERE / "rules_model.py", out / "model.py")
    predicted = _rules_predict(x_train, thresholds)
    manifest = _manifest(
        "1.0.0", "python", "model.py", classes, x_train, predicted, x_test, "iris-rules"
    )
    manifest = manifest.model_copy(
        update={"python_class": "RulesModel", "description": "Two petal thresholds; no framework"}
    )
    (out / "model.yaml").write_bytes(dump_manifest(manifest))
    print(f"{out.name}: thresholds {thresholds}")


def _rules_predict(x: np.ndarray[Any, Any], t: dict[str, float]) -> np.ndarray[Any, Any]:
    return np.where(
        x[:, 2] < t["petal_length_setosa_below"],
        "setosa",
        np.where(x[:, 3] > t["petal_width_virginica_above"], "virginica", "versicolor"),
    )


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


if __name__ == "__main__":
    main()
