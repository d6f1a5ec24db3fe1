"""``model.yaml``: what a model package says about itself.

The manifest is the contract between whoever trained a model and everything
that serves or monitors it: which framework loads the artifact, what the
model predicts (a class among labels, or a number), which input features it
takes in which order, and — optionally — what the training data looked like
(the *baseline*, binned, so drift can be measured against it) and a few
sample rows (so a server can warm a model up and a health probe can exercise
it). It is validated strictly (unknown fields are refused: a typo such as
``featurs`` must not silently drop the feature list) and every problem is
reported with its dotted path.

A manifest is untrusted input, read by the hub and by every prediction server.
Its size is bounded before it is parsed, and YAML anchors and aliases are
refused before anything is built: a few kilobytes of nested aliases (an
"alias bomb") would otherwise expand to gigabytes. Without aliases the parsed
manifest grows only with its bytes. Sample values are scalars (number, string,
boolean, null) and every integer fits 64 bits, so the manifest stores as JSON.

Example::

    manifest_version: 1
    name: iris
    version: "1.0.0"
    format: sklearn            # sklearn | onnx | python | mlflow
    artifact: model.joblib     # relative to the package root
    target: {type: classification, name: species, classes: [setosa, versicolor, virginica]}
    features:
      - {name: sepal_length, type: float}
      - {name: petal_width, type: float, nullable: true}
    baseline:
      rows: 120
      features:
        sepal_length: {edges: [4.3, 5.0, 6.0, 7.9], fractions: [0.2, 0.5, 0.3]}
      prediction: {categories: {setosa: 0.33, versicolor: 0.33, virginica: 0.34}}
    samples:
      - {sepal_length: 5.1, petal_width: 0.2}
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pilothouse.foundation.validation import explain
from pilothouse.modelpkg.errors import ManifestError

MANIFEST_NAME = "model.yaml"
"""The manifest's file name at the package root."""

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
"""A manifest larger than this is refused before it is parsed."""

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
_INT64 = (-(2**63), 2**63 - 1)


def _scalar(value: Any) -> Any:
    """A sample value: a number (an integer within 64 bits), a string, a boolean or null."""
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError(f"{value} is outside the signed 64-bit range")
        return value
    kind = (
        "a list"
        if isinstance(value, list)
        else "a mapping"
        if isinstance(value, dict)
        else f"a {type(value).__name__}"
    )
    raise ValueError(
        f"must be a number, string, boolean or null, not {kind} (quote it to make it a string)"
    )


SampleValue = Annotated[Any, AfterValidator(_scalar)]
"""One value of a sample row."""


class ModelFormat(StrEnum):
    """How the artifact is loaded, and which extra brings the framework."""

    SKLEARN = "sklearn"
    """A scikit-learn estimator saved with joblib or pickle (extra ``sklearn``)."""
    ONNX = "onnx"
    """An ONNX graph run by onnxruntime (extra ``onnx``)."""
    PYTHON = "python"
    """A Python module (or package directory) with a class that loads and predicts."""
    MLFLOW = "mlflow"
    """An MLflow model directory loaded as a pyfunc (extra ``mlflow``)."""


class TargetType(StrEnum):
    """What the model predicts."""

    CLASSIFICATION = "classification"
    """One label among ``target.classes``; probabilities per class when supported."""
    REGRESSION = "regression"
    """A number."""


class FeatureType(StrEnum):
    """The type of one input feature."""

    FLOAT = "float"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    STRING = "string"

    @property
    def numeric(self) -> bool:
        """Whether values travel as float64 (everything except ``string``)."""
        return self is not FeatureType.STRING


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Feature(_Strict):
    """One input feature, in the order the model expects it."""

    name: str = Field(min_length=1, max_length=256)
    """Column name; rows and V2 per-feature inputs use it."""
    type: FeatureType = FeatureType.FLOAT
    """``float``, ``integer``, ``boolean`` or ``string``."""
    nullable: bool = False
    """Whether a missing value (JSON null, an empty CSV cell) is accepted (as NaN / None)."""


class Target(_Strict):
    """What the model predicts."""

    type: TargetType
    """``classification`` or ``regression``."""
    name: str = Field(default="prediction", min_length=1, max_length=256)
    """Name of the predicted quantity."""
    classes: list[str] | None = None
    """Class labels (classification only), in the order of the model's probability columns."""

    @model_validator(mode="after")
    def _classes_fit_type(self) -> Target:
        if self.type is TargetType.CLASSIFICATION:
            if not self.classes or len(self.classes) < 2:
                raise ValueError("a classification target needs at least two classes")
            if len(set(self.classes)) != len(self.classes):
                raise ValueError("classes must be unique")
        elif self.classes:
            raise ValueError("a regression target has no classes")
        return self


class Histogram(_Strict):
    """A numeric distribution: bin edges and the fraction of values in each bin."""

    edges: list[float] = Field(min_length=2, max_length=1001)
    """Strictly increasing bin edges; values outside fall into the first or last bin."""
    fractions: list[float]
    """One fraction per bin (``len(edges) - 1``), non-negative, summing to 1."""

    @model_validator(mode="after")
    def _consistent(self) -> Histogram:
        if not all(math.isfinite(e) for e in self.edges):
            raise ValueError("edges must be finite numbers")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges must be strictly increasing")
        if len(self.fractions) != len(self.edges) - 1:
            raise ValueError(
                f"expected {len(self.edges) - 1} fractions (one per bin), got {len(self.fractions)}"
            )
        _check_fractions(self.fractions)
        return self


class Categories(_Strict):
    """A categorical distribution: the fraction of each value."""

    categories: dict[str, float] = Field(min_length=1, max_length=10_000)
    """Fraction of each category, non-negative, summing to 1."""

    @model_validator(mode="after")
    def _consistent(self) -> Categories:
        _check_fractions(list(self.categories.values()))
        return self


def _check_fractions(fractions: list[float]) -> None:
    if any(not math.isfinite(f) or f < 0 for f in fractions):
        raise ValueError("fractions must be non-negative numbers")
    if abs(sum(fractions) - 1.0) > 0.01:
        raise ValueError(f"fractions must sum to 1, got {sum(fractions):.4f}")


class Baseline(_Strict):
    """Distributions of the training data, against which drift is measured."""

    rows: int | None = Field(default=None, ge=0, le=_INT64[1])
    """How many rows the baseline was computed from."""
    features: dict[str, Histogram | Categories] = Field(default_factory=dict)
    """Per feature: a histogram (numeric) or categories (string)."""
    prediction: Histogram | Categories | None = None
    """Distribution of the predictions: categories (classification) or a histogram."""


class Manifest(_Strict):
    """The whole of ``model.yaml``."""

    manifest_version: Literal[1] = 1
    """Version of this schema."""
    name: str = Field(pattern=_NAME)
    """Model name: letters, digits, ``_``, ``.``, ``-``."""
    version: str = Field(pattern=_NAME)
    """Model version, e.g. ``1.0.0``."""
    format: ModelFormat
    """How the artifact is loaded."""
    artifact: str = Field(min_length=1, max_length=1024)
    """Path of the artifact (file or directory) relative to the package root."""
    python_class: str = Field(default="Model", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """``python`` format: the class in the artifact module that loads and predicts."""
    description: str = Field(default="", max_length=10_000)
    """Free text."""
    target: Target
    """What the model predicts."""
    features: list[Feature] = Field(min_length=1, max_length=100_000)
    """Input features, in the order the model takes them."""
    baseline: Baseline | None = None
    """Training-data distributions, for drift."""
    samples: list[dict[str, SampleValue]] = Field(default_factory=list, max_length=1000)
    """A few input rows: used to warm the model up and by health probes."""

    @field_validator("artifact")
    @classmethod
    def _relative_artifact(cls, value: str) -> str:
        parts = value.replace("\\", "/").split("/")
        if value.startswith("/") or ".." in parts:
            raise ValueError("must be a relative path inside the package (no '/', no '..')")
        return "/".join(p for p in parts if p not in ("", "."))

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        names = [f.name for f in self.features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"feature names must be unique; repeated: {', '.join(duplicates)}")
        if self.baseline is not None:
            self._check_baseline(self.baseline)
        return self

    def _check_baseline(self, baseline: Baseline) -> None:
        kinds = {f.name: f.type for f in self.features}
        for name, dist in baseline.features.items():
            if name not in kinds:
                raise ValueError(f"baseline.features.{name}: no such feature")
            wanted = Categories if kinds[name] is FeatureType.STRING else Histogram
            if not isinstance(dist, wanted):
                raise ValueError(
                    f"baseline.features.{name}: a {kinds[name].value} feature needs "
                    f"{'categories' if wanted is Categories else 'edges and fractions'}"
                )
        pred = baseline.prediction
        if pred is None:
            return
        if self.target.type is TargetType.CLASSIFICATION:
            if not isinstance(pred, Categories):
                raise ValueError("baseline.prediction: a classifier's baseline needs categories")
            unknown = sorted(set(pred.categories) - set(self.target.classes or ()))
            if unknown:
                raise ValueError(f"baseline.prediction: not among target.classes: {unknown}")
        elif not isinstance(pred, Histogram):
            raise ValueError(
                "baseline.prediction: a regressor's baseline needs edges and fractions"
            )

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature names in model order."""
        return tuple(f.name for f in self.features)

    @property
    def is_classifier(self) -> bool:
        """Whether the target is a classification."""
        return self.target.type is TargetType.CLASSIFICATION


def parse_manifest(data: bytes, *, source: str = MANIFEST_NAME) -> Manifest:
    """Parse and validate a manifest, or raise :class:`ManifestError` naming each problem."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError([f"larger than {MAX_MANIFEST_BYTES:,} bytes"], source=source)
    loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _refuse_aliases(data, loader, source)
        doc = yaml.load(data, Loader=loader)
    except yaml.YAMLError as exc:
        raise ManifestError([f"not valid YAML: {exc}"], source=source) from None
    if not isinstance(doc, dict):
        got = "nothing" if doc is None else type(doc).__name__
        raise ManifestError([f"expected a mapping at the top level, got {got}"], source=source)
    try:
        return Manifest.model_validate(doc)
    except ValidationError as exc:
        raise ManifestError(explain(exc), source=source) from None


def _refuse_aliases(data: bytes, loader: type[yaml.SafeLoader], source: str) -> None:
    """``ManifestError`` at the first anchor or alias, found from parser events (nothing built)."""
    for event in yaml.parse(data, Loader=loader):
        anchor = getattr(event, "anchor", None)  # set on aliases and on anchored nodes
        if anchor is not None:
            line = event.start_mark.line + 1 if event.start_mark is not None else "?"
            raise ManifestError(
                [
                    f"line {line}: YAML anchors and aliases are not allowed in a manifest "
                    f"(found {anchor!r}); write the values out"
                ],
                source=source,
            )


def dump_manifest(manifest: Manifest) -> bytes:
    """The manifest as YAML (fields in schema order, defaults left out)."""
    doc = manifest.model_dump(mode="json", exclude_defaults=True)
    doc = {"manifest_version": 1, **doc}
    text: str = yaml.safe_dump(
        doc, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None
    )
    return text.encode()
