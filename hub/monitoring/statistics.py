"""Reading the statistics back: the monitoring series, and actuals joined to predictions.

``GET /deployments/{id}/monitoring?from&to&step``: the span defaults to the
hour before now, the step to a sixtieth of the span (at least a minute); a
step that would cut the span into more than :data:`MAX_POINTS` steps is
widened to fit (the answer's ``step_s`` says so); a span that ends before it
starts is empty.
``POST /deployments/{id}/actuals`` stores each actual whose association id
(``<request_id>:<row>``) names a stored prediction of the
deployment — the last value given for an id wins — and counts the others as
unmatched; with an ``accuracy_below`` retraining policy, the accuracy of the
predictions of the last ``monitoring.minute_windows_hours`` with actuals is
then checked against it.
"""

from __future__ import annotations

import asyncio
import math

import orjson

from pilothouse.hub import clock
from pilothouse.hub.api.schemas import (
    ActualsResult,
    ActualsUpload,
    DriftView,
    MonitoringQuery,
    MonitoringSeries,
)
from pilothouse.hub.monitoring import series
from pilothouse.hub.monitoring.retraining import Retraining
from pilothouse.hub.settings import MonitoringSettings
from pilothouse.hub.store.interface import Store

MAX_POINTS = 10_000
"""Steps in one series at most."""
DEFAULT_SPAN_US = 3_600_000_000
DEFAULT_STEPS = 60
MIN_DEFAULT_STEP_S = 60


class Statistics:
    """Answers the monitoring series and takes actuals."""

    def __init__(self, store: Store, settings: MonitoringSettings, retraining: Retraining) -> None:
        self._store = store
        self._settings = settings
        self._retraining = retraining

    async def series(self, deployment_id: str, query: MonitoringQuery) -> MonitoringSeries:
        """The deployment's statistics over the query's span, step by step."""
        await self._store.get_deployment(deployment_id)  # 404 for an unknown one
        span = _span(query)
        found = []
        if span.to_us > span.from_us:
            bodies = await self._store.window_bodies(deployment_id, span.from_us, span.to_us)
            joined = await self._store.joined_actuals(deployment_id, span.from_us, span.to_us)
            found = await asyncio.to_thread(series.points, bodies, joined, span)
        state = await self._store.monitoring_state(deployment_id)
        features = state.drift.get("features")
        rows = state.drift.get("rows")
        package = state.drift.get("package_id")
        return MonitoringSeries(
            deployment_id=deployment_id,
            start=clock.from_us(span.from_us),
            end=clock.from_us(span.to_us),
            step_s=span.step_us // 1_000_000,
            points=found,
            drift=DriftView(
                status=state.drift_status,
                features=features if isinstance(features, dict) else {},
                rows=rows if isinstance(rows, int) else None,
                package_id=package if isinstance(package, str) else None,
            ),
        )

    async def record_actuals(self, deployment_id: str, upload: ActualsUpload) -> ActualsResult:
        """Join the actuals to stored predictions; check the accuracy policy."""
        record = await self._store.get_deployment(deployment_id)
        latest = {a.association_id: orjson.dumps(a.value).decode() for a in upload.actuals}
        matched = await self._store.record_actuals(deployment_id, list(latest.items()))
        threshold = record.desired.settings.retraining.accuracy_below
        if matched and threshold is not None:
            accuracy = await self._recent_accuracy(deployment_id)
            if accuracy is not None and accuracy < threshold:
                summary = {"accuracy": accuracy, "accuracy_below": threshold}
                await self._retraining.trigger(record, "accuracy_below", summary)
        return ActualsResult(matched=matched, unmatched=len(latest) - matched)

    async def _recent_accuracy(self, deployment_id: str) -> float | None:
        now = clock.now_us()
        since = now - round(self._settings.minute_windows_hours * 3_600_000_000)
        joined = await self._store.joined_actuals(deployment_id, since, now + 1)
        scores = series.Scores()
        for row in joined:
            scores.add(orjson.loads(row.prediction), orjson.loads(row.actual))
        return scores.equal / scores.count if scores.count else None


def _span(query: MonitoringQuery) -> series.Span:
    to_us = clock.to_us(query.to) if query.to else clock.now_us()
    from_us = clock.to_us(query.from_) if query.from_ else to_us - DEFAULT_SPAN_US
    to_us = max(to_us, from_us)  # a span that ends before it starts holds nothing
    if query.step is None:
        step_s = max(MIN_DEFAULT_STEP_S, math.ceil((to_us - from_us) / 1e6 / DEFAULT_STEPS))
    else:
        step_s = query.step
    step_s = max(step_s, math.ceil((to_us - from_us) / 1e6 / MAX_POINTS))
    return series.Span(from_us, to_us, step_s * 1_000_000)
