"""Each format loads and predicts through the same contract; a missing framework names its extra."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pilothouse.modelpkg import MissingExtraError, ModelLoadError, ModelPredictError, load_model
from tests.modelpkg.factory import CLASSES, FEATURES, SETOSA, VIRGINICA, manifest, python_package

ROWS = [SETOSA, VIRGINICA]


def predict_rows(path: Path) -> tuple[list[object], np.ndarray | None]:
    model = load_model(path)
    try:
        table = model.schema.from_rows(ROWS)
        prediction = model.predict(table.matrix, proba=True)
    finally:
        model.close()
    return prediction.values.tolist(), prediction.proba


def test_sklearn(iris: dict[str, Path]) -> None:
    for key in ("v1", "v2"):
        values, proba = predict_rows(iris[key])
        assert values == ["setosa", "virginica"]
        assert proba is not None and proba.shape == (2, 3)
        assert np.allclose(proba.sum(axis=1), 1)
        assert proba[0].argmax() == 0 and proba[1].argmax() == 2


def test_sklearn_probability_columns_follow_the_manifest_order(
    iris: dict[str, Path], tmp_path: Path
) -> None:
    pkg = tmp_path / "reordered"
    shutil.copytree(iris["v1"], pkg)
    doc = yaml.safe_load((pkg / "model.yaml").read_text())
    doc["target"]["classes"] = ["virginica", "setosa", "versicolor"]
    doc["baseline"]["prediction"] = None
    (pkg / "model.yaml").write_text(yaml.safe_dump(doc))
    _, proba = predict_rows(pkg)
    assert proba is not None and proba[0].argmax() == 1 and proba[1].argmax() == 0


def test_sklearn_class_mismatch_is_a_load_error(iris: dict[str, Path], tmp_path: Path) -> None:
    pkg = tmp_path / "wrong"
    shutil.copytree(iris["v1"], pkg)
    doc = yaml.safe_load((pkg / "model.yaml").read_text())
    doc["target"]["classes"] = ["cat", "dog", "bird"]
    doc["baseline"]["prediction"] = None
    (pkg / "model.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ModelLoadError, match=r"the model's classes \['setosa'"):
        load_model(pkg)


def test_sklearn_feature_count_mismatch(iris: dict[str, Path], tmp_path: Path) -> None:
    pkg = tmp_path / "short"
    shutil.copytree(iris["v1"], pkg)
    doc = yaml.safe_load((pkg / "model.yaml").read_text())
    doc["features"] = doc["features"][:3]
    doc["baseline"] = None
    doc["samples"] = []
    (pkg / "model.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ModelLoadError, match="takes 4 features, the manifest lists 3"):
        load_model(pkg)


def onnx_package(iris: dict[str, Path], tmp_path: Path) -> Path:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx converts the test model")
    import joblib
    from skl2onnx.common.data_types import FloatTensorType

    estimator = joblib.load(iris["v1"] / "model.joblib")
    onx = skl2onnx.convert_sklearn(
        estimator,
        initial_types=[("input", FloatTensorType([None, 4]))],
        options={id(estimator): {"zipmap": False}}
        if not hasattr(estimator, "steps")
        else {id(estimator.steps[-1][1]): {"zipmap": False}},
        target_opset=17,
    )
    pkg = tmp_path / "onnx"
    pkg.mkdir()
    (pkg / "model.onnx").write_bytes(onx.SerializeToString())
    doc = manifest(format="onnx", artifact="model.onnx")
    (pkg / "model.yaml").write_text(yaml.safe_dump(doc))
    return pkg


def test_onnx(iris: dict[str, Path], tmp_path: Path) -> None:
    values, proba = predict_rows(onnx_package(iris, tmp_path))
    assert values == ["setosa", "virginica"]
    assert proba is not None and proba.shape == (2, 3) and proba[0].argmax() == 0


def test_python(iris: dict[str, Path]) -> None:
    values, proba = predict_rows(iris["rules"])
    assert values == ["setosa", "virginica"]
    assert proba is not None and proba.tolist() == [[1, 0, 0], [0, 0, 1]]


def test_python_package_directory_with_relative_imports(tmp_path: Path) -> None:
    pkg = python_package(
        tmp_path / "pkgdir",
        code="",
        artifact="impl",
        python_class="Model",
        files={
            "impl/__init__.py": b"from .rules import Model\n",
            "impl/rules.py": b"import numpy as np\n"
            b"class Model:\n"
            b"    def __init__(self, d):\n        pass\n"
            b"    def predict(self, rows):\n        return np.full(len(rows), 'setosa')\n",
        },
    )
    (pkg / "model.py").unlink()
    values, proba = predict_rows(pkg)
    assert values == ["setosa", "setosa"] and proba is None


def test_python_errors_are_typed(tmp_path: Path) -> None:
    raising = python_package(tmp_path / "raising", init="raise RuntimeError('no weights found')")
    with pytest.raises(ModelLoadError, match="RuntimeError: no weights found"):
        load_model(raising)
    wrong_class = python_package(tmp_path / "wrong", python_class="Missing")
    with pytest.raises(ModelLoadError, match="no class 'Missing'"):
        load_model(wrong_class)
    bad_predict = python_package(tmp_path / "bad", predict="raise ValueError('boom')")
    model = load_model(bad_predict)
    with pytest.raises(ModelPredictError, match="ValueError: boom"):
        model.predict(model.schema.from_rows(ROWS).matrix)
    short = python_package(tmp_path / "short", predict="return rows[:1, 0]")
    model = load_model(short)
    with pytest.raises(ModelPredictError, match=r"answered shape \[1\] for 2 rows"):
        model.predict(model.schema.from_rows(ROWS).matrix)


def test_two_versions_of_one_module_load_side_by_side(tmp_path: Path) -> None:
    a = load_model(python_package(tmp_path / "a", predict="return np.full(len(rows), 'setosa')"))
    b = load_model(python_package(tmp_path / "b", predict="return np.full(len(rows), 'virginica')"))
    matrix = a.schema.from_rows(ROWS).matrix
    assert a.predict(matrix).values[0] == "setosa" and b.predict(matrix).values[0] == "virginica"
    before = set(sys.modules)
    a.close()
    assert len(before - set(sys.modules)) == 1


# MLflow warns about its own internal ``Any`` type hints while saving/loading a pyfunc.
@pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning")
def test_mlflow(iris: dict[str, Path], tmp_path: Path) -> None:
    mlflow_sklearn = pytest.importorskip(
        "mlflow.sklearn", reason="the mlflow extra is not installed"
    )
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    frame = pd.DataFrame(data.data, columns=FEATURES)  # MLflow models are fitted on frames
    estimator = LogisticRegression(max_iter=500).fit(frame, np.asarray(CLASSES)[data.target])
    pkg = tmp_path / "mlflow"
    pkg.mkdir()
    mlflow_sklearn.save_model(estimator, str(pkg / "mlmodel"), serialization_format="cloudpickle")
    (pkg / "model.yaml").write_text(yaml.safe_dump(manifest(format="mlflow", artifact="mlmodel")))
    values, proba = predict_rows(pkg)
    assert values == ["setosa", "virginica"]
    assert proba is None, "a pyfunc gives no probabilities"


@pytest.mark.parametrize(
    ("fmt", "module", "extra"), [("onnx", "onnxruntime", "onnx"), ("mlflow", "mlflow", "mlflow")]
)
def test_missing_framework_names_the_extra(
    fmt: str, module: str, extra: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes ``import module`` fail
    if module == "mlflow":
        monkeypatch.setitem(sys.modules, "mlflow.pyfunc", None)
    pkg = tmp_path / fmt
    pkg.mkdir()
    (pkg / "artifact").mkdir()
    (pkg / "artifact" / "x").write_bytes(b"")
    (pkg / "model.yaml").write_text(yaml.safe_dump(manifest(format=fmt, artifact="artifact")))
    with pytest.raises(MissingExtraError) as info:
        load_model(pkg)
    assert f"pip install 'pilothouse[{extra}]'" in str(info.value)


def test_features_and_classes_of_the_fixture() -> None:
    assert list(SETOSA) == FEATURES and CLASSES[0] == "setosa"
