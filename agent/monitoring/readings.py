"""Readings of a prediction server's counters, and the windows between two of them.

The server answers cumulative counters per loaded model (an *instance*); a
window is what changed between two readings of the same server: counts,
sums and histogram bins subtracted. Pure functions, no I/O: the relay reads,
this module cuts.

- A reading from another server process (a restart: a new ``server`` id), or
  an instance the previous reading did not have, counts from zero (the
  instance's own ``since``), so nothing is counted twice and nothing is lost.
- A feature's minimum (maximum) over a window is known only when the running
  minimum moved during it; otherwise it is left out (``None``) rather than
  guessed.
- Challengers' figures go into the champion's window, features and
  predictions only into the windows of models that answered clients (a
  challenger's features would count the champion's rows twice).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pilothouse.agent.errors import StatisticsError
from pilothouse.foundation.domain.monitoring import (
    MAX_ASSOCIATIONS,
    Association,
    ChallengerWindow,
    Distribution,
    FeatureWindow,
    LatencyHistogram,
    StatsWindow,
)
from pilothouse.foundation.validation import explain

_MIN_SPAN_S = 1e-6


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RequestCounters(_Loose):
    """Requests one model answered, cumulative or over a window."""

    requests: int = 0
    rows: int = 0
    client_errors: int = 0
    server_errors: int = 0
    latency: LatencyHistogram = Field(default_factory=LatencyHistogram)

    def minus(self, base: RequestCounters | None) -> RequestCounters:
        """What was counted since ``base``."""
        if base is None:
            return self
        return RequestCounters(
            requests=self.requests - base.requests,
            rows=self.rows - base.rows,
            client_errors=self.client_errors - base.client_errors,
            server_errors=self.server_errors - base.server_errors,
            latency=_latency_minus(self.latency, base.latency),
        )

    @property
    def error_rate(self) -> float | None:
        """Server-side failures per request (``None`` without requests)."""
        return self.server_errors / self.requests if self.requests else None


class MonitorCounters(_Loose):
    """A model's feature and prediction summaries."""

    rows: int = 0
    features: dict[str, FeatureWindow] = Field(default_factory=dict)
    prediction: FeatureWindow | None = None


class ShadowCounters(_Loose):
    """How a challenger fared on mirrored traffic."""

    rows: int = 0
    compared: int = 0
    errors: int = 0
    dropped: int = 0
    agreeing: int | None = None
    abs_diff_sum: float | None = None
    latency: LatencyHistogram = Field(default_factory=LatencyHistogram)


class ModelReading(_Loose):
    """One loaded model's counters."""

    instance: str
    package_id: str
    role: str
    since: float
    requests: RequestCounters
    monitor: MonitorCounters = Field(default_factory=MonitorCounters)
    shadow: ShadowCounters = Field(default_factory=ShadowCounters)


class AssociationItem(_Loose):
    """One request's predictions, numbered by the server."""

    seq: int
    instance: str
    request_id: str
    predictions: list[str | float]


class Associations(_Loose):
    """The associations after the cursor given, and the newest number."""

    last_seq: int = 0
    items: list[AssociationItem] = Field(default_factory=list)


class Reading(_Loose):
    """``GET /admin/deployments/{id}/statistics`` as the server answered it."""

    deployment_id: str
    server: str
    taken_at: float
    models: list[ModelReading]
    associations: Associations = Field(default_factory=Associations)

    @classmethod
    def parse(cls, doc: Mapping[str, Any]) -> Reading:
        """Validate a server's answer, or raise :class:`StatisticsError` naming the field."""
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            raise StatisticsError(
                f"prediction server sent unreadable statistics: {'; '.join(explain(exc))}"
            ) from None

    def model(self, instance: str) -> ModelReading | None:
        """The reading of one instance, if the server still keeps it."""
        for model in self.models:
            if model.instance == instance:
                return model
        return None

    def champion(self) -> ModelReading | None:
        """The model that answers the deployment's requests now."""
        for model in self.models:
            if model.role == "champion":
                return model
        return None

    def cursor(self) -> Cursor:
        """What the next reading is subtracted from (kept durably by the relay)."""
        return Cursor(
            server=self.server, taken_at=self.taken_at, models=self.models,
            associations_seq=self.associations.last_seq,
        )  # fmt: skip


class Cursor(_Loose):
    """The previous reading of one deployment, less what is not subtracted."""

    server: str
    taken_at: float
    models: list[ModelReading]
    associations_seq: int = 0

    def model(self, instance: str) -> ModelReading | None:
        """The previous reading of one instance."""
        for model in self.models:
            if model.instance == instance:
                return model
        return None


@dataclass(frozen=True, slots=True)
class _Slice:
    model: ModelReading
    base: ModelReading | None
    start: float


def cut(previous: Cursor | None, current: Reading, new_id: Callable[[], str]) -> list[StatsWindow]:
    """The windows between ``previous`` and ``current`` (one per model with news)."""
    same_server = previous is not None and previous.server == current.server
    slices: list[_Slice] = []
    for model in current.models:
        base = previous.model(model.instance) if previous is not None and same_server else None
        start = previous.taken_at if base is not None and previous is not None else model.since
        slices.append(_Slice(model, base, start))
    associations = _associations(current)
    champion = next((s for s in slices if s.model.role == "champion"), None)
    challengers = [
        _challenger(s) for s in slices if s.model.role == "challenger" and _shadow_news(s)
    ]
    windows: list[StatsWindow] = []
    for piece in slices:
        if piece.model.role == "challenger":
            continue
        extra = challengers if piece is champion else []
        window = _window(current, piece, extra, associations.get(piece.model.instance, []), new_id)
        if window is not None:
            windows.append(window)
    return windows


def _window(
    current: Reading,
    piece: _Slice,
    challengers: list[ChallengerWindow],
    associations: list[Association],
    new_id: Callable[[], str],
) -> StatsWindow | None:
    model, base = piece.model, piece.base
    requests = model.requests.minus(base.requests if base else None)
    if requests.requests == 0 and not challengers:
        return None
    base_features = base.monitor.features if base else {}
    features = {
        name: _feature_minus(feature, base_features.get(name))
        for name, feature in model.monitor.features.items()
    }
    prediction = model.monitor.prediction
    if prediction is not None:
        prediction = _feature_minus(prediction, base.monitor.prediction if base else None)
    end = max(current.taken_at, piece.start + _MIN_SPAN_S)
    return StatsWindow(
        id=new_id(),
        deployment_id=current.deployment_id,
        package_id=model.package_id,
        start=_time(piece.start),
        end=_time(end),
        requests=requests.requests,
        rows=requests.rows,
        client_errors=requests.client_errors,
        server_errors=requests.server_errors,
        latency=requests.latency,
        features={k: v for k, v in features.items() if v.count or v.missing},
        prediction=prediction if prediction is not None and prediction.count else None,
        challengers=challengers,
        associations=associations,
    )


def _challenger(piece: _Slice) -> ChallengerWindow:
    now, base = piece.model.shadow, piece.base.shadow if piece.base else None
    return ChallengerWindow(
        package_id=piece.model.package_id,
        rows=now.rows - (base.rows if base else 0),
        compared=now.compared - (base.compared if base else 0),
        errors=now.errors - (base.errors if base else 0),
        dropped=now.dropped - (base.dropped if base else 0),
        agreeing=_minus_opt(now.agreeing, base.agreeing if base else None),
        abs_diff_sum=_clamped(_minus_opt(now.abs_diff_sum, base.abs_diff_sum if base else None)),
        latency=_latency_minus(now.latency, base.latency if base else None),
    )


def _shadow_news(piece: _Slice) -> bool:
    now, base = piece.model.shadow, piece.base.shadow if piece.base else None
    if base is None:
        return bool(now.rows or now.errors or now.dropped)
    return (now.rows, now.errors, now.dropped) != (base.rows, base.errors, base.dropped)


def _associations(current: Reading) -> dict[str, list[Association]]:
    out: dict[str, list[Association]] = {}
    for item in current.associations.items:
        kept = out.setdefault(item.instance, [])
        if len(kept) < MAX_ASSOCIATIONS:
            kept.append(Association(request_id=item.request_id, predictions=item.predictions))
    return out


def _feature_minus(now: FeatureWindow, base: FeatureWindow | None) -> FeatureWindow:
    if base is None:
        return now
    return FeatureWindow(
        count=now.count - base.count,
        missing=now.missing - base.missing,
        sum=now.sum - base.sum,
        min=now.min if _moved(now.min, base.min, lower=True) else None,
        max=now.max if _moved(now.max, base.max, lower=False) else None,
        distribution=_distribution_minus(now.distribution, base.distribution),
    )


def _moved(now: float | None, base: float | None, *, lower: bool) -> bool:
    if now is None:
        return False
    if base is None:
        return True
    return now < base if lower else now > base


def _distribution_minus(now: Distribution | None, base: Distribution | None) -> Distribution | None:
    if now is None or base is None or (now.edges, now.labels) != (base.edges, base.labels):
        return now
    counts = [a - b for a, b in zip(now.counts, base.counts, strict=True)]
    return now.model_copy(update={"counts": counts})


def _latency_minus(now: LatencyHistogram, base: LatencyHistogram | None) -> LatencyHistogram:
    if base is None or base.bounds != now.bounds:
        return now
    return LatencyHistogram(
        bounds=now.bounds,
        counts=[a - b for a, b in zip(now.counts, base.counts, strict=True)],
        sum=max(0.0, now.sum - base.sum),
    )


def _minus_opt(now: float | None, base: float | None) -> Any:
    if now is None:
        return None
    return now - (base or 0)


def _clamped(value: float | None) -> float | None:
    return None if value is None else max(0.0, value)


def _time(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
