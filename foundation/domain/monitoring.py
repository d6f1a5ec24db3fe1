"""Prediction statistics windows: what the agent ships and the hub stores.

A window holds one deployment's traffic over ``[start, end)`` as *counts that add
up*: requests, rows and errors, a latency histogram on fixed bounds, and per
feature (and for the predictions) a histogram on the package baseline's bins
with the baseline's fractions beside it. Never raw rows. Because every figure
is a sum, windows merge by addition (:func:`merge`), so the hub can downsample
1-minute windows into hourly ones and answer any ``step`` exactly, and drift
(PSI) and latency quantiles are computed from the merged counts — never by
averaging per-window figures.

The prediction server keeps cumulative counters; the agent makes windows by
subtracting consecutive snapshots (:meth:`StatsWindow` ids are ULIDs made by the
agent, so the hub ingests them idempotently like events).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

LATENCY_BOUNDS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Upper bounds (seconds) of every latency histogram; a last, open bucket follows."""

PSI_FLOOR = 1e-4
"""Fractions below this count as this in PSI, so an empty bin is a large term, not ∞."""

MAX_FEATURES = 1000
MAX_CHALLENGERS = 16
MAX_WINDOWS_PER_BATCH = 500
MAX_ASSOCIATIONS = 10_000
"""Requests per window whose predictions are kept for actuals (a sample past this)."""
MAX_ASSOCIATED_ROWS = 10_000

Count = Annotated[int, Field(ge=0)]
N = TypeVar("N", int, float)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LatencyHistogram(_Strict):
    """Request latencies: ``counts[i]`` fell at or below ``bounds[i]``; the last is open."""

    bounds: list[float] = Field(default_factory=lambda: list(LATENCY_BOUNDS), max_length=64)
    counts: list[Count] = Field(
        default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1), max_length=65
    )
    sum: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if len(self.counts) != len(self.bounds) + 1:
            raise ValueError(
                f"counts must have one more entry than bounds "
                f"(got {len(self.counts)} counts for {len(self.bounds)} bounds)"
            )
        if any(b <= a for a, b in zip(self.bounds, self.bounds[1:], strict=False)):
            raise ValueError("bounds must increase")
        return self

    @property
    def total(self) -> int:
        """How many requests the histogram holds."""
        return sum(self.counts)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile, interpolated linearly inside its bucket (``None`` when empty).

        The open last bucket answers its lower bound: a latency past the last bound
        is known only to be at least that.
        """
        total = self.total
        if total == 0:
            return None
        rank = q * total
        seen = 0
        lower = 0.0
        for i, count in enumerate(self.counts):
            if count and seen + count >= rank:
                if i == len(self.bounds):
                    return self.bounds[-1] if self.bounds else 0.0
                upper = self.bounds[i]
                return lower + (upper - lower) * max(rank - seen, 0.0) / count
            seen += count
            lower = self.bounds[i] if i < len(self.bounds) else lower
        return self.bounds[-1] if self.bounds else 0.0

    def merged(self, other: LatencyHistogram) -> LatencyHistogram:
        """Both histograms' counts added (their bounds must be equal)."""
        if other.bounds != self.bounds:
            raise ValueError("latency histograms with different bounds cannot be merged")
        return LatencyHistogram(
            bounds=self.bounds,
            counts=[a + b for a, b in zip(self.counts, other.counts, strict=True)],
            sum=self.sum + other.sum,
        )


class Distribution(_Strict):
    """Observed counts on the baseline's bins, with the baseline's fractions.

    Numeric values carry ``edges`` (``len(counts) + 1`` of them); categorical ones
    carry ``labels`` (one per count). ``baseline`` holds the fraction the package's
    training data put in each bin.
    """

    edges: list[float] | None = Field(default=None, max_length=1001)
    labels: list[str] | None = Field(default=None, max_length=1000)
    counts: list[Count] = Field(max_length=1000)
    baseline: list[float] = Field(max_length=1000)

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if (self.edges is None) == (self.labels is None):
            raise ValueError("a distribution has either edges (numeric) or labels (categorical)")
        if len(self.baseline) != len(self.counts):
            raise ValueError("baseline must have one fraction per count")
        if self.edges is not None and len(self.edges) != len(self.counts) + 1:
            raise ValueError("edges must have one more entry than counts")
        if self.labels is not None and len(self.labels) != len(self.counts):
            raise ValueError("labels must have one entry per count")
        return self

    def psi(self) -> float | None:
        """Population stability index against the baseline (``None`` without rows)."""
        return psi(self.counts, self.baseline)

    def merged(self, other: Distribution) -> Distribution:
        """Counts added bin by bin (both must be on the same bins)."""
        if (other.edges, other.labels) != (self.edges, self.labels):
            raise ValueError("distributions on different bins cannot be merged")
        counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        return self.model_copy(update={"counts": counts})


class FeatureWindow(_Strict):
    """One feature's (or the predictions') summary over a window."""

    count: Count = 0
    missing: Count = 0
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    distribution: Distribution | None = None

    @property
    def mean(self) -> float | None:
        """The mean of the present values (``None`` without any)."""
        return self.sum / self.count if self.count else None

    def merged(self, other: FeatureWindow) -> FeatureWindow:
        """Both summaries combined."""
        if self.distribution is None or other.distribution is None:
            dist = self.distribution or other.distribution
        else:
            dist = self.distribution.merged(other.distribution)
        return FeatureWindow(
            count=self.count + other.count,
            missing=self.missing + other.missing,
            sum=self.sum + other.sum,
            min=_pick(min, self.min, other.min),
            max=_pick(max, self.max, other.max),
            distribution=dist,
        )


class ChallengerWindow(_Strict):
    """How one challenger fared on the champion's mirrored traffic over the window.

    ``agreeing`` is set for classifiers (rows where its label equals the
    champion's), ``abs_diff_sum`` for regressors (sum of |challenger - champion|).
    """

    package_id: str = Field(min_length=1, max_length=200)
    rows: Count = 0
    compared: Count = 0
    errors: Count = 0
    dropped: Count = 0
    agreeing: Count | None = None
    abs_diff_sum: float | None = Field(default=None, ge=0)
    latency: LatencyHistogram = Field(default_factory=LatencyHistogram)

    @property
    def agreement(self) -> float | None:
        """Share of compared rows with the champion's label (classifiers)."""
        if self.agreeing is None or not self.compared:
            return None
        return self.agreeing / self.compared

    @property
    def mean_abs_difference(self) -> float | None:
        """Mean absolute difference from the champion's predictions (regressors)."""
        if self.abs_diff_sum is None or not self.compared:
            return None
        return self.abs_diff_sum / self.compared

    def merged(self, other: ChallengerWindow) -> ChallengerWindow:
        """Both windows of the same challenger added."""
        return ChallengerWindow(
            package_id=self.package_id,
            rows=self.rows + other.rows,
            compared=self.compared + other.compared,
            errors=self.errors + other.errors,
            dropped=self.dropped + other.dropped,
            agreeing=_add(self.agreeing, other.agreeing),
            abs_diff_sum=_add(self.abs_diff_sum, other.abs_diff_sum),
            latency=self.latency.merged(other.latency),
        )


class Association(_Strict):
    """What the champion answered to one request, kept so actuals can be joined later.

    The prediction server returns ``request_id`` with the answer; the association
    id of row ``i`` is ``f"{request_id}:{i}"``. Predictions are labels
    (classifiers) or numbers (regressors) — never the request's features.
    """

    request_id: str = Field(min_length=1, max_length=64)
    predictions: list[str | float] = Field(max_length=MAX_ASSOCIATED_ROWS)


class StatsWindow(_Strict):
    """One deployment's prediction statistics over ``[start, end)``, as counts."""

    id: str = Field(min_length=1, max_length=64)
    deployment_id: str = Field(min_length=1, max_length=200)
    package_id: str = Field(min_length=1, max_length=200)
    start: datetime
    end: datetime
    requests: Count = 0
    rows: Count = 0
    client_errors: Count = 0
    server_errors: Count = 0
    latency: LatencyHistogram = Field(default_factory=LatencyHistogram)
    features: dict[str, FeatureWindow] = Field(default_factory=dict, max_length=MAX_FEATURES)
    prediction: FeatureWindow | None = None
    challengers: list[ChallengerWindow] = Field(default_factory=list, max_length=MAX_CHALLENGERS)
    associations: list[Association] = Field(default_factory=list, max_length=MAX_ASSOCIATIONS)

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.client_errors + self.server_errors > self.requests:
            raise ValueError("more errors than requests")
        return self

    @property
    def error_rate(self) -> float | None:
        """Share of requests that failed on the server's side (``None`` without requests)."""
        return self.server_errors / self.requests if self.requests else None


class StatsBatch(_Strict):
    """Body of the agent's statistics upload: windows, oldest first."""

    windows: list[StatsWindow] = Field(max_length=MAX_WINDOWS_PER_BATCH)


@dataclass(slots=True)
class Aggregate:
    """Windows of one deployment and package added together (see :func:`merge`)."""

    deployment_id: str
    package_id: str
    start: datetime
    end: datetime
    windows: int = 0
    requests: int = 0
    rows: int = 0
    client_errors: int = 0
    server_errors: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    features: dict[str, FeatureWindow] = field(default_factory=dict)
    prediction: FeatureWindow | None = None
    challengers: dict[str, ChallengerWindow] = field(default_factory=dict)

    @property
    def error_rate(self) -> float | None:
        """Server-side failures per request (``None`` without requests)."""
        return self.server_errors / self.requests if self.requests else None

    def drift(self) -> dict[str, float]:
        """PSI per feature that has a baseline and rows."""
        out: dict[str, float] = {}
        for name, feature in self.features.items():
            value = feature.distribution.psi() if feature.distribution else None
            if value is not None:
                out[name] = value
        return out

    def prediction_drift(self) -> float | None:
        """PSI of the predictions (``None`` without a baseline or rows)."""
        dist = self.prediction.distribution if self.prediction else None
        return dist.psi() if dist else None

    def add(self, window: StatsWindow) -> None:
        """Fold one window in (same deployment and package)."""
        self.windows += 1
        self.start = min(self.start, window.start)
        self.end = max(self.end, window.end)
        self.requests += window.requests
        self.rows += window.rows
        self.client_errors += window.client_errors
        self.server_errors += window.server_errors
        self.latency = self.latency.merged(window.latency)
        for name, feature in window.features.items():
            mine = self.features.get(name)
            self.features[name] = feature if mine is None else mine.merged(feature)
        if window.prediction is not None:
            mine_p = self.prediction
            self.prediction = (
                window.prediction if mine_p is None else mine_p.merged(window.prediction)
            )
        for challenger in window.challengers:
            seen = self.challengers.get(challenger.package_id)
            self.challengers[challenger.package_id] = (
                challenger if seen is None else seen.merged(challenger)
            )


def merge(windows: Iterable[StatsWindow]) -> list[Aggregate]:
    """Windows added up per (deployment, package), in order of first appearance.

    Windows of different packages are never added: a replacement starts a new
    series, which is what lets a rollback guard compare the old model's last
    window with the new one's.
    """
    out: dict[tuple[str, str], Aggregate] = {}
    for window in windows:
        key = (window.deployment_id, window.package_id)
        agg = out.get(key)
        if agg is None:
            agg = out[key] = Aggregate(
                deployment_id=window.deployment_id,
                package_id=window.package_id,
                start=window.start,
                end=window.end,
            )
        agg.add(window)
    return list(out.values())


def psi(counts: Sequence[int], baseline: Sequence[float]) -> float | None:
    """Population stability index of observed ``counts`` against baseline fractions.

    Matches the prediction server's own figure (the same floor), so the hub and
    ``/v1/deployments/{id}/statistics`` agree on one window.
    """
    total = sum(counts)
    if total == 0:
        return None
    value = 0.0
    for count, expected in zip(counts, baseline, strict=True):
        observed = max(count / total, PSI_FLOOR)
        base = max(expected, PSI_FLOOR)
        value += (observed - base) * math.log(observed / base)
    return round(value, 6)


def _pick(fn: Callable[[float, float], float], a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return fn(a, b)


def _add(a: N | None, b: N | None) -> N | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b
