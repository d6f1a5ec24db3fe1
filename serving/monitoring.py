"""Prediction statistics: cheap on the request path, vectorized off it.

Two kinds of bookkeeping, both touched only from the event loop (so no locks):

- :class:`RequestStats`, per deployment (it survives a model replacement):
  request, row and error counts and a latency histogram. Recording a request
  is a few integer additions and one ``bisect`` — well under a microsecond.
- :class:`FeatureMonitor`, per loaded model (its baseline belongs to the
  package): per-feature count, missing values, mean, min and max; a histogram
  against the baseline's bins with its population stability index (PSI); the
  same for predictions. A request only *appends* its already-validated arrays
  to a buffer; every ``flush_rows`` rows (or when statistics are read) the
  buffer is concatenated and folded in with whole-array NumPy operations —
  binning every feature at once by arithmetic on equal-width bins and a single
  ``bincount``. There is no per-row Python loop anywhere; the
  amortized cost per single-row request is a fraction of a microsecond.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import Counter
from typing import Any

import numpy as np
import numpy.typing as npt

from pilothouse.modelpkg import Categories, Histogram, Manifest, Table

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Upper bounds (seconds) of the latency histogram; the last bucket is +Inf."""

_PSI_FLOOR = 1e-4


class RequestStats:
    """Requests, rows, errors and latency of one deployment."""

    __slots__ = (
        "client_errors",
        "latency_counts",
        "latency_sum",
        "requests",
        "rows",
        "server_errors",
        "since",
    )

    def __init__(self) -> None:
        self.since = time.time()
        self.requests = 0
        self.rows = 0
        self.client_errors = 0
        self.server_errors = 0
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0

    def record(self, rows: int, seconds: float) -> None:
        """A request that was answered."""
        self.requests += 1
        self.rows += rows
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds

    def record_error(self, seconds: float, *, client: bool) -> None:
        """A request that failed (4xx when ``client``, else 5xx)."""
        self.requests += 1
        if client:
            self.client_errors += 1
        else:
            self.server_errors += 1
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready view, with approximate p50/p99 (bucket upper bounds)."""
        return {
            "since": _iso(self.since),
            "requests": self.requests,
            "rows": self.rows,
            "errors": {"client": self.client_errors, "server": self.server_errors},
            "latency_seconds": {
                "buckets": [*LATENCY_BUCKETS, "+Inf"],
                "counts": list(self.latency_counts),
                "sum": self.latency_sum,
                "p50": self.quantile(0.5),
                "p99": self.quantile(0.99),
            },
        }

    def cumulative(self) -> dict[str, Any]:
        """The raw counters, shaped like a statistics window's request figures."""
        return {
            "requests": self.requests,
            "rows": self.rows,
            "client_errors": self.client_errors,
            "server_errors": self.server_errors,
            "latency": {
                "bounds": list(LATENCY_BUCKETS),
                "counts": list(self.latency_counts),
                "sum": self.latency_sum,
            },
        }

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding the ``q`` quantile (``None`` before any request)."""
        total = sum(self.latency_counts)
        if total == 0:
            return None
        rank = q * total
        seen = 0
        for bound, count in zip((*LATENCY_BUCKETS, math.inf), self.latency_counts, strict=True):
            seen += count
            if seen >= rank:
                return bound if bound != math.inf else LATENCY_BUCKETS[-1]
        return LATENCY_BUCKETS[-1]


class _NumericBlock:
    """Running summaries of a float matrix's columns, with optional baseline histograms.

    Binning is arithmetic when a histogram's bins have equal width, to 0.1 % (what
    :func:`pilothouse.modelpkg.profiling.histogram` writes): ``(value - first edge) / width``,
    clipped, for every column at once, then one ``bincount``. Other histograms are
    binned with one ``searchsorted`` per feature (a loop over columns, not rows).
    Values below the first edge count in the first bin, above the last in the last.
    """

    def __init__(self, names: tuple[str, ...], baselines: list[Histogram | None]) -> None:
        self.names = names
        n = len(names)
        self.count = np.zeros(n, dtype=np.int64)
        self.missing = np.zeros(n, dtype=np.int64)
        self.total = np.zeros(n, dtype=np.float64)
        self.low = np.full(n, np.inf)
        self.high = np.full(n, -np.inf)
        self.hist_cols = [i for i, b in enumerate(baselines) if b is not None]
        self.baselines = [b for b in baselines if b is not None]
        self.width = max((len(h.fractions) for h in self.baselines), default=1)
        self.hist = np.zeros((len(self.baselines), self.width), dtype=np.int64)
        self.offsets = np.arange(len(self.baselines), dtype=np.int64) * self.width
        self.bins = np.array([len(h.fractions) for h in self.baselines], dtype=np.int64)
        self.start = np.array([h.edges[0] for h in self.baselines], dtype=np.float64)
        step = [(h.edges[-1] - h.edges[0]) / len(h.fractions) for h in self.baselines]
        self.scale = 1.0 / np.array(step, dtype=np.float64) if step else np.ones(0)
        self.uniform = all(
            np.allclose(np.diff(h.edges), s, rtol=1e-3, atol=0.0)
            for h, s in zip(self.baselines, step, strict=True)
        )
        self.inner = [np.asarray(h.edges[1:-1], dtype=np.float64) for h in self.baselines]

    def update(self, values: npt.NDArray[np.float64]) -> None:
        if values.size == 0:
            return
        finite = np.isfinite(values)
        if finite.all():
            self.count += values.shape[0]
            self.total += values.sum(axis=0)
            np.minimum(self.low, values.min(axis=0), out=self.low)
            np.maximum(self.high, values.max(axis=0), out=self.high)
        else:
            self.count += finite.sum(axis=0)
            self.missing += np.isnan(values).sum(axis=0)
            self.total += np.where(finite, values, 0.0).sum(axis=0)
            self.low = np.fmin(self.low, np.where(finite, values, np.inf).min(axis=0))
            self.high = np.fmax(self.high, np.where(finite, values, -np.inf).max(axis=0))
        if self.hist_cols:
            self._bin(values[:, self.hist_cols], finite[:, self.hist_cols])

    def _bin(self, values: npt.NDArray[np.float64], finite: npt.NDArray[np.bool_]) -> None:
        everything = bool(finite.all())
        if self.uniform:
            clean = values if everything else np.where(finite, values, 0.0)
            position = (clean - self.start) * self.scale
            index = np.minimum(np.maximum(position, 0), self.bins - 1).astype(np.int64)
        else:
            index = np.empty(values.shape, dtype=np.int64)
            for j, inner in enumerate(self.inner):  # per feature, not per row
                index[:, j] = np.searchsorted(inner, values[:, j], side="right")
        index += self.offsets
        flat = index.ravel() if everything else index[finite]
        self.hist += np.bincount(flat, minlength=self.hist.size).reshape(self.hist.shape)

    def describe(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for i, name in enumerate(self.names):
            n = int(self.count[i])
            out[name] = {
                "count": n,
                "missing": int(self.missing[i]),
                "mean": float(self.total[i] / n) if n else None,
                "min": float(self.low[i]) if n else None,
                "max": float(self.high[i]) if n else None,
            }
        for j, i in enumerate(self.hist_cols):
            base = self.baselines[j]
            counts = self.hist[j, : len(base.fractions)]
            out[self.names[i]]["histogram"] = {
                "edges": base.edges,
                "counts": counts.tolist(),
                "baseline": base.fractions,
                "psi": psi(counts, np.asarray(base.fractions)),
            }
        return out

    def cumulative(self) -> dict[str, dict[str, Any]]:
        """Raw sums per column (a window's feature fields), on the baseline's bins."""
        out: dict[str, dict[str, Any]] = {}
        for i, name in enumerate(self.names):
            n = int(self.count[i])
            out[name] = {
                "count": n,
                "missing": int(self.missing[i]),
                "sum": float(self.total[i]),
                "min": float(self.low[i]) if n else None,
                "max": float(self.high[i]) if n else None,
            }
        for j, i in enumerate(self.hist_cols):
            base = self.baselines[j]
            out[self.names[i]]["distribution"] = {
                "edges": list(base.edges),
                "counts": self.hist[j, : len(base.fractions)].tolist(),
                "baseline": list(base.fractions),
            }
        return out


class _CategoryBlock:
    """Counts of string values per column, against baseline category fractions."""

    def __init__(self, names: tuple[str, ...], baselines: list[Categories | None]) -> None:
        self.names = names
        self.baselines = baselines
        self.counts: list[Counter[str]] = [Counter() for _ in names]
        self.missing = [0] * len(names)

    def update(self, values: npt.NDArray[Any]) -> None:
        for j in range(len(self.names)):  # per column, not per row
            column = values[:, j]
            present = column[column != None]  # noqa: E711 - element-wise comparison
            self.missing[j] += int(column.shape[0] - present.shape[0])
            labels, counts = np.unique(present.astype(str), return_counts=True)
            self.counts[j].update(dict(zip(labels.tolist(), counts.tolist(), strict=True)))

    def describe(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for j, name in enumerate(self.names):
            view = _categories_view(self.counts[j], self.baselines[j])
            out[name] = {"count": sum(self.counts[j].values()), "missing": self.missing[j], **view}
        return out

    def cumulative(self) -> dict[str, dict[str, Any]]:
        """Counts per column (a window's feature fields), on the baseline's labels."""
        out: dict[str, dict[str, Any]] = {}
        for j, name in enumerate(self.names):
            counts = self.counts[j]
            out[name] = {
                "count": sum(counts.values()),
                "missing": self.missing[j],
                "distribution": _labelled(counts, self.baselines[j]),
            }
        return out


class FeatureMonitor:
    """What one loaded model has been asked and has answered, against its baseline."""

    def __init__(self, manifest: Manifest, *, flush_rows: int = 1024) -> None:
        self.since = time.time()
        self.flush_rows = flush_rows
        self.classifier = manifest.is_classifier
        base = manifest.baseline
        feats = base.features if base else {}
        numeric = [f for f in manifest.features if f.type.numeric]
        strings = [f for f in manifest.features if not f.type.numeric]
        self._numeric = _NumericBlock(
            tuple(f.name for f in numeric), [_hist(feats.get(f.name)) for f in numeric]
        )
        self._strings = _CategoryBlock(
            tuple(f.name for f in strings), [_cats(feats.get(f.name)) for f in strings]
        )
        prediction = base.prediction if base else None
        self._pred_numeric = _NumericBlock(("prediction",), [_hist(prediction)])
        self._pred_classes: Counter[str] = Counter()
        self._known = np.array(sorted(manifest.target.classes or [""]))
        self._known_counts = np.zeros(len(self._known), dtype=np.int64)
        self._pred_baseline = _cats(prediction)
        self._pending: list[tuple[Table, npt.NDArray[Any]]] = []
        self._pending_rows = 0
        self.rows = 0

    def observe(self, table: Table, predictions: npt.NDArray[Any]) -> None:
        """Buffer one request's rows and predictions (folded in every ``flush_rows`` rows)."""
        self._pending.append((table, predictions))
        self._pending_rows += table.rows
        if self._pending_rows >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        """Fold the buffered rows into the summaries, in one vectorized pass."""
        if not self._pending:
            return
        pending, self._pending, self._pending_rows = self._pending, [], 0
        numeric = np.concatenate([t.numeric for t, _ in pending])
        predictions = np.concatenate([p for _, p in pending])
        self.rows += numeric.shape[0]
        self._numeric.update(numeric)
        if self._strings.names:
            self._strings.update(
                np.concatenate([t.strings for t, _ in pending if t.strings is not None])
            )
        if self.classifier:
            self._count_classes(predictions.astype(str))
        else:
            self._pred_numeric.update(predictions.astype(np.float64).reshape(-1, 1))

    def _count_classes(self, labels: npt.NDArray[Any]) -> None:
        """Count labels against the manifest's classes with one sorted lookup and a bincount."""
        where = np.searchsorted(self._known, labels)
        clipped = np.minimum(where, len(self._known) - 1)
        known = self._known[clipped] == labels
        self._known_counts += np.bincount(clipped[known], minlength=len(self._known))
        if not known.all():  # labels the manifest does not list: rare, counted apart
            extra, counts = np.unique(labels[~known], return_counts=True)
            self._pred_classes.update(dict(zip(extra.tolist(), counts.tolist(), strict=True)))

    def snapshot(self) -> dict[str, Any]:
        """Per-feature and prediction summaries (flushes first)."""
        self.flush()
        for label, count in zip(self._known.tolist(), self._known_counts.tolist(), strict=True):
            if count:
                self._pred_classes[label] += count
        self._known_counts[:] = 0
        features = {**self._numeric.describe(), **self._strings.describe()}
        if self.classifier:
            predictions = {
                "count": sum(self._pred_classes.values()),
                **_categories_view(self._pred_classes, self._pred_baseline),
            }
        else:
            predictions = self._pred_numeric.describe()["prediction"]
        return {
            "since": _iso(self.since),
            "rows": self.rows,
            "features": features,
            "predictions": predictions,
        }

    def cumulative(self) -> dict[str, Any]:
        """Raw counters since the model was loaded, shaped like a window's figures.

        Counts and sums only, so that the difference of two readings is what
        happened between them (the agent makes windows that way).
        """
        self.flush()
        if self.classifier:
            classes = Counter(self._pred_classes)
            for label, count in zip(self._known.tolist(), self._known_counts.tolist(), strict=True):
                if count:
                    classes[label] += count
            prediction: dict[str, Any] = {
                "count": sum(classes.values()),
                "distribution": _labelled(classes, self._pred_baseline),
            }
        else:
            prediction = self._pred_numeric.cumulative()["prediction"]
        features = {**self._numeric.cumulative(), **self._strings.cumulative()}
        return {"rows": self.rows, "features": features, "prediction": prediction}

    def drift(self) -> tuple[dict[str, float], float | None]:
        """PSI per feature with a baseline, and of the predictions (for metrics)."""
        snap = self.snapshot()
        per_feature = {}
        for name, view in snap["features"].items():
            value = view.get("histogram", view).get("psi")
            if value is not None:
                per_feature[name] = float(value)
        pred_view = snap["predictions"]
        pred = pred_view.get("histogram", pred_view).get("psi")
        return per_feature, pred


def psi(counts: npt.NDArray[Any], baseline: npt.NDArray[Any]) -> float | None:
    """Population stability index of observed counts against baseline fractions."""
    total = counts.sum()
    if total == 0:
        return None
    observed = np.maximum(counts / total, _PSI_FLOOR)
    expected = np.maximum(baseline, _PSI_FLOOR)
    return round(float(((observed - expected) * np.log(observed / expected)).sum()), 6)


def _categories_view(counts: Counter[str], baseline: Categories | None) -> dict[str, Any]:
    view: dict[str, Any] = {"categories": dict(counts)}
    if baseline is not None:
        keys = sorted(set(baseline.categories) | set(counts))
        view["baseline"] = baseline.categories
        view["psi"] = psi(
            np.array([counts.get(k, 0) for k in keys], dtype=np.float64),
            np.array([baseline.categories.get(k, 0.0) for k in keys]),
        )
    return view


OTHER_LABEL = "__other__"
"""The bin of categories the baseline does not know (its baseline fraction is 0)."""


def _labelled(counts: Counter[str], baseline: Categories | None) -> dict[str, Any] | None:
    """Counts on the baseline's categories plus one bin for the rest (fixed bins: windows add)."""
    if baseline is None:
        return None
    labels = sorted(baseline.categories)
    known = set(labels)
    return {
        "labels": [*labels, OTHER_LABEL],
        "counts": [counts.get(k, 0) for k in labels]
        + [sum(v for k, v in counts.items() if k not in known)],
        "baseline": [baseline.categories[k] for k in labels] + [0.0],
    }


def _hist(dist: Histogram | Categories | None) -> Histogram | None:
    return dist if isinstance(dist, Histogram) else None


def _cats(dist: Histogram | Categories | None) -> Categories | None:
    return dist if isinstance(dist, Categories) else None


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class ShadowStats:
    """How a challenger fares on the champion's traffic, and how long it takes."""

    __slots__ = (
        "abs_diff",
        "agreeing",
        "compared",
        "dropped",
        "errors",
        "latency_counts",
        "latency_sum",
        "rows",
    )

    def __init__(self) -> None:
        self.rows = 0
        self.errors = 0
        self.dropped = 0
        self.compared = 0
        self.agreeing = 0
        self.abs_diff = 0.0
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0

    def timed(self, seconds: float, requests: int = 1) -> None:
        """A replay of ``requests`` took ``seconds``: each one's challenger latency."""
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += requests
        self.latency_sum += seconds * requests

    def cumulative(self, *, classifier: bool) -> dict[str, Any]:
        """The raw counters, shaped like a window's challenger figures."""
        return {
            "rows": self.rows,
            "compared": self.compared,
            "errors": self.errors,
            "dropped": self.dropped,
            "agreeing": self.agreeing if classifier else None,
            "abs_diff_sum": None if classifier else self.abs_diff,
            "latency": {
                "bounds": list(LATENCY_BUCKETS),
                "counts": list(self.latency_counts),
                "sum": self.latency_sum,
            },
        }

    def compare(
        self, mine: npt.NDArray[Any], champion: npt.NDArray[Any], *, classifier: bool
    ) -> None:
        """Fold in one batch of predictions next to the champion's (vectorized)."""
        self.rows += int(mine.shape[0])
        self.compared += int(mine.shape[0])
        if classifier:
            self.agreeing += int((mine.astype(str) == champion.astype(str)).sum())
        else:
            self.abs_diff += float(
                np.abs(mine.astype(np.float64) - champion.astype(np.float64)).sum()
            )

    def snapshot(self, *, classifier: bool) -> dict[str, Any]:
        """A JSON-ready view: agreement rate (classifier) or mean absolute difference."""
        view: dict[str, Any] = {"rows": self.rows, "errors": self.errors, "dropped": self.dropped}
        if classifier:
            view["agreement"] = self.agreeing / self.compared if self.compared else None
        else:
            view["mean_abs_difference"] = self.abs_diff / self.compared if self.compared else None
        return view
