"""The monitoring time series: stored windows added up per step and package.

Each window falls in the step its start falls in (an hourly rollup whose hour
began before the span counts in the first step). Within a step, windows are
added per package with :func:`~pilothouse.foundation.domain.monitoring.merge`
— a replacement inside a step gives two points, one per package, since
distributions of different packages are not on the same bins — and every
figure (error rate, latency quantiles, PSI, challenger agreement) is computed
from the added counts. Actuals joined to the step's predictions give its
accuracy (share of actuals equal to the prediction) and, for numbers, its MAE.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson

from pilothouse.foundation.domain.monitoring import (
    Aggregate,
    ChallengerWindow,
    StatsWindow,
    merge,
)
from pilothouse.hub import clock
from pilothouse.hub.api.schemas import ChallengerPoint, MonitoringPoint
from pilothouse.hub.store.records import JoinedActual


@dataclass(frozen=True, slots=True)
class Span:
    """The steps a series is cut into: ``[from_us, to_us)`` by ``step_us``."""

    from_us: int
    to_us: int
    step_us: int

    def index(self, start_us: int) -> int:
        """The step holding a window that starts at ``start_us`` (the first for earlier ones)."""
        return max(0, (start_us - self.from_us) // self.step_us)

    def bounds(self, index: int) -> tuple[datetime, datetime]:
        """Start and end of step ``index``."""
        start = self.from_us + index * self.step_us
        return clock.from_us(start), clock.from_us(min(start + self.step_us, self.to_us))


@dataclass(slots=True)
class Scores:
    """Actuals of one step and package: how many, how many equal, absolute errors."""

    count: int = 0
    equal: int = 0
    abs_error: float = 0.0
    numeric: int = 0

    def add(self, prediction: object, actual: object) -> None:
        """Count one prediction against its actual."""
        self.count += 1
        if _label(prediction) == _label(actual):
            self.equal += 1
        if _number(prediction) is not None and _number(actual) is not None:
            self.numeric += 1
            self.abs_error += abs(float(prediction) - float(actual))  # type: ignore[arg-type]


def points(
    bodies: Sequence[str], joined: Sequence[JoinedActual], span: Span
) -> list[MonitoringPoint]:
    """The series of the stored window bodies and joined actuals (CPU work: run it in a thread)."""
    steps: dict[int, list[StatsWindow]] = defaultdict(list)
    for body in bodies:
        window = StatsWindow.model_validate_json(body)
        if clock.to_us(window.start) < span.to_us:
            steps[span.index(clock.to_us(window.start))].append(window)
    scores: dict[tuple[int, str], Scores] = defaultdict(Scores)
    for row in joined:
        key = (span.index(row.window_start_us), row.package_id)
        scores[key].add(orjson.loads(row.prediction), orjson.loads(row.actual))
    out: list[MonitoringPoint] = []
    for index in sorted(steps):
        start, end = span.bounds(index)
        out.extend(
            point(agg, start, end, scores.get((index, agg.package_id), Scores()))
            for agg in merge(steps[index])
        )
    return out


def point(agg: Aggregate, start: datetime, end: datetime, scores: Scores) -> MonitoringPoint:
    """One step of one package."""
    return MonitoringPoint(
        start=start,
        end=end,
        package_id=agg.package_id,
        requests=agg.requests,
        rows=agg.rows,
        client_errors=agg.client_errors,
        server_errors=agg.server_errors,
        error_rate=agg.error_rate,
        latency_p50_s=agg.latency.quantile(0.5),
        latency_p95_s=agg.latency.quantile(0.95),
        latency_p99_s=agg.latency.quantile(0.99),
        drift=agg.drift(),
        prediction_drift=agg.prediction_drift(),
        challengers=[challenger(c) for c in agg.challengers.values()],
        actuals=scores.count,
        accuracy=scores.equal / scores.count if scores.count else None,
        mae=scores.abs_error / scores.numeric if scores.numeric else None,
    )


def challenger(window: ChallengerWindow) -> ChallengerPoint:
    """One challenger's figures over a step."""
    return ChallengerPoint(
        package_id=window.package_id,
        rows=window.rows,
        compared=window.compared,
        errors=window.errors,
        dropped=window.dropped,
        agreement=window.agreement,
        mean_abs_difference=window.mean_abs_difference,
        latency_p50_s=window.latency.quantile(0.5),
        latency_p99_s=window.latency.quantile(0.99),
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _label(value: object) -> str:
    """A prediction or actual as a label: ``1``, ``1.0`` and ``"1"`` are the same label."""
    number = _number(value)
    if number is not None and number.is_integer():
        return str(int(number))
    if number is not None:
        return repr(number)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
