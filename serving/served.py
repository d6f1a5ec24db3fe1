"""A model as the server holds it: loaded, warmed up, measured, monitored.

Warm-up predicts the manifest's sample rows before a model may take traffic,
so a model that loads but cannot predict is refused while the old one still
serves. It also *measures*: the best of a few runs on one row and on 100
rows gives a cost model ``fixed + per_row * rows``, from which each request
decides where to run:

- on the event loop when the estimate is within ``inline_budget_ms`` (default
  1 ms). A small linear model costs ~0.1 ms per call here, while a hop to a
  thread and back costs ~0.08 ms of overhead plus GIL hand-offs — and gains
  nothing, since such a call holds the GIL anyway. Inline, the loop stalls for
  no longer than aiohttp's own per-request work.
- in a thread otherwise (a forest, a big batch, an ONNX graph), so one slow
  model cannot stall health checks and every other deployment.

A model without sample rows cannot be measured and always runs in a thread.
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pilothouse.modelpkg import LoadedModel
from pilothouse.serving.monitoring import FeatureMonitor, RequestStats, ShadowStats

_BATCH = 100

SERVER_ID = uuid.uuid4().hex[:16]
"""This server process: the agent never subtracts one process's counters from another's."""
_instances = itertools.count(1)


def _new_instance() -> str:
    return f"{SERVER_ID}-{next(_instances)}"


@dataclass(frozen=True, slots=True)
class Cost:
    """Estimated seconds of one predict call."""

    fixed: float
    per_row: float

    def estimate(self, rows: int) -> float:
        """Seconds for ``rows`` rows."""
        return self.fixed + self.per_row * rows


@dataclass(eq=False)
class ServedModel:
    """One loaded model package in the server."""

    package_id: str
    model: LoadedModel
    source: str
    """Where it was loaded from (package directory or archive path)."""
    sha256: str | None
    """sha256 of the archive it came from (``None`` for a directory)."""
    monitor: FeatureMonitor
    cost: Cost | None = None
    inline_budget_s: float = 0.001
    loaded_at: float = field(default_factory=time.time)
    load_seconds: float = 0.0
    warmup_seconds: float = 0.0
    shadow: ShadowStats = field(default_factory=ShadowStats)
    """Filled while the model is a challenger."""
    requests: RequestStats = field(default_factory=RequestStats)
    """Requests this model answered itself (as champion, or addressed by version)."""
    instance: str = field(default_factory=_new_instance)
    """This load of the package: its counters start at zero."""
    in_flight: int = 0
    retired: bool = False

    def runs_inline(self, rows: int) -> bool:
        """Whether a request of ``rows`` rows is cheap enough for the event loop."""
        return self.cost is not None and self.cost.estimate(rows) <= self.inline_budget_s

    def describe(self) -> dict[str, Any]:
        """A JSON-ready view."""
        manifest = self.model.manifest
        return {
            "model_package_id": self.package_id,
            "name": manifest.name,
            "version": manifest.version,
            "format": manifest.format.value,
            "source": self.source,
            "sha256": self.sha256,
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
            "load_seconds": round(self.load_seconds, 4),
            "warmup_seconds": round(self.warmup_seconds, 4),
            "predict_cost_us": None
            if self.cost is None
            else {
                "fixed": round(self.cost.fixed * 1e6, 1),
                "per_row": round(self.cost.per_row * 1e6, 3),
            },
            "inline_rows_max": self.inline_rows_max(),
        }

    def inline_rows_max(self) -> int:
        """The largest request that runs on the event loop (0: none do)."""
        if self.cost is None or self.cost.fixed > self.inline_budget_s:
            return 0
        if self.cost.per_row <= 0:
            return 1_000_000_000
        return int((self.inline_budget_s - self.cost.fixed) / self.cost.per_row)


def warm_up(model: LoadedModel, repeats: int = 5) -> Cost | None:
    """Predict the sample rows (raising what the model raises) and measure the cost.

    Blocking: runs in a loader thread.
    """
    samples = model.samples()
    if samples is None:
        return None
    proba = model.supports_proba
    model.predict(samples.matrix, proba=proba)  # first call: lazy initialisation, checks
    one = samples.matrix[:1]
    batch = samples.matrix[np.arange(_BATCH) % samples.rows]
    t_one = _best(lambda: model.predict(one, proba=proba), repeats)
    t_batch = _best(lambda: model.predict(batch, proba=proba), max(2, repeats // 2))
    per_row = max(0.0, (t_batch - t_one) / (_BATCH - 1))
    return Cost(fixed=max(0.0, t_one - per_row), per_row=per_row)


def _best(call: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - began)
    return best
