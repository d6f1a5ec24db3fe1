"""model.yaml is validated strictly, and every problem names its field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from pilothouse.modelpkg import ManifestError, parse_manifest
from pilothouse.modelpkg.contents import check_samples
from tests.modelpkg.factory import EXAMPLES, manifest


def parse(doc: dict[str, Any]) -> Any:
    return parse_manifest(yaml.safe_dump(doc).encode())


def test_the_committed_examples_validate() -> None:
    for name in ("iris-1.0.0", "iris-2.0.0", "iris-rules-1.0.0"):
        m = parse_manifest((EXAMPLES / name / "model.yaml").read_bytes())
        assert m.feature_names == ("sepal_length", "sepal_width", "petal_length", "petal_width")
        assert m.target.classes == ["setosa", "versicolor", "virginica"]
        assert m.baseline is not None and set(m.baseline.features) == set(m.feature_names)
        assert m.samples


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"featurs": []}, "featurs: unknown field"),
        ({"format": "tensorflow"}, "format: got 'tensorflow'"),
        ({"name": "has space"}, "name: got 'has space'"),
        ({"artifact": "../model.py"}, "artifact: must be a relative path"),
        ({"artifact": "/etc/passwd"}, "artifact: must be a relative path"),
        ({"features": []}, "features: got []"),
        ({"features": [{"name": "a"}, {"name": "a"}]}, "repeated: a"),
        ({"target": {"type": "classification", "classes": ["a"]}}, "at least two classes"),
        ({"target": {"type": "regression", "classes": ["a", "b"]}}, "no classes"),
        (
            {"baseline": {"features": {"nope": {"edges": [0, 1], "fractions": [1]}}}},
            "baseline.features.nope: no such feature",
        ),
        (
            {"baseline": {"features": {"sepal_length": {"edges": [0, 1], "fractions": [0.5]}}}},
            "fractions must sum to 1",
        ),
        (
            {"baseline": {"features": {"sepal_length": {"edges": [1, 0], "fractions": [1]}}}},
            "strictly increasing",
        ),
    ],
)
def test_invalid_manifests_name_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse(manifest(**change))
    assert message in str(info.value)


def test_missing_required_field() -> None:
    doc = manifest()
    del doc["target"]
    with pytest.raises(ManifestError, match="target: required, but not given"):
        parse(doc)


@pytest.mark.parametrize("text", [b"", b"- a\n- b\n", b"name: [unclosed\n"])
def test_not_a_mapping_or_not_yaml(text: bytes) -> None:
    with pytest.raises(ManifestError, match=r"model\.yaml"):
        parse_manifest(text)


def test_samples_are_checked_against_the_features() -> None:
    bad = manifest(
        samples=[{"sepal_length": 1, "sepal_width": 2, "petal_length": "x", "petal_width": 1}]
    )
    with pytest.raises(
        ManifestError, match="samples: row 0, feature 'petal_length': expected a number"
    ):
        check_samples(parse(bad))
    missing = manifest(samples=[{"sepal_length": 1}])
    with pytest.raises(ManifestError, match="row 0: missing feature 'sepal_width'"):
        check_samples(parse(missing))
