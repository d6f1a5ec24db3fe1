"""Readiness that means predictions work: each deployment predicts its own sample rows.

``/v2/health/ready`` says the server has finished loading what it was asked
to load at start; it does not say a model can predict. An orchestrator that
routes traffic by readiness (a Kubernetes readiness probe) needs the stronger
claim, so :class:`PredictionProbe` makes it: every deployment the probe is
about predicts its champion's manifest sample rows (or, for a manifest
without samples, one row of neutral values of the right types), on the
server's prediction threads, exactly as a request would run the model.

A probe every few seconds must stay cheap and must not disturb what users
measure: the rows go straight to the model (not through the request path),
so request statistics, feature monitoring and challengers never see them;
and a deployment whose champion passed within ``min_interval_s`` is not
predicted again (concurrent probes share one result). A replaced champion is
a new model, so it is always predicted afresh.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from pilothouse.modelpkg import PackageError, Table
from pilothouse.modelpkg.manifest import FeatureType
from pilothouse.serving.deployments import DeploymentRegistry, release
from pilothouse.serving.errors import NotFoundError, NotReadyError
from pilothouse.serving.served import ServedModel

_NEUTRAL: dict[FeatureType, Any] = {
    FeatureType.FLOAT: 0.0,
    FeatureType.INTEGER: 0,
    FeatureType.BOOLEAN: False,
    FeatureType.STRING: "",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One deployment's probe: whether its champion predicted its rows."""

    ok: bool
    model_package_id: str
    rows: int
    error: str | None
    at: float

    def describe(self) -> dict[str, Any]:
        """A JSON-ready view."""
        view: dict[str, Any] = {
            "ok": self.ok,
            "model_package_id": self.model_package_id,
            "rows": self.rows,
        }
        if self.error is not None:
            view["error"] = self.error
        return view


class PredictionProbe:
    """Predicts each deployment's sample rows, at most once per ``min_interval_s`` per model."""

    def __init__(
        self, registry: DeploymentRegistry, executor: ThreadPoolExecutor, min_interval_s: float
    ) -> None:
        self._registry = registry
        self._executor = executor
        self._min_interval_s = min_interval_s
        self._last: dict[int, Outcome] = {}
        """The last outcome per champion (by identity: a replacement is a new model)."""
        self._running: dict[int, asyncio.Future[Outcome]] = {}

    async def check(self, deployment_id: str | None = None) -> tuple[bool, dict[str, Any]]:
        """Whether the server is ready to predict, and a JSON view of why (not) so.

        With ``deployment_id``, that deployment must be loaded and predict;
        without, every loaded deployment must, and there must be at least one.
        """
        if not self._registry.ready.is_set():
            return False, {"ready": False, "reason": "deployments are still loading"}
        try:
            deployments = (
                [self._registry.get(deployment_id)] if deployment_id else self._registry.all()
            )
        except (NotFoundError, NotReadyError) as exc:
            return False, {"ready": False, "reason": str(exc)}
        if not deployments:
            return False, {"ready": False, "reason": "no deployment is loaded"}
        outcomes = await asyncio.gather(*(self._outcome(d.champion) for d in deployments))
        ready = all(o.ok for o in outcomes)
        views = {d.id: o.describe() for d, o in zip(deployments, outcomes, strict=True)}
        return ready, {"ready": ready, "deployments": views}

    async def _outcome(self, model: ServedModel) -> Outcome:
        key = id(model)
        last = self._last.get(key)
        if last is not None and last.ok and time.monotonic() - last.at < self._min_interval_s:
            return last
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(self._predict(model))
            self._running[key] = running
            running.add_done_callback(lambda _: self._running.pop(key, None))
        return await asyncio.shield(running)

    async def _predict(self, model: ServedModel) -> Outcome:
        model.in_flight += 1  # a replacement must not close it under the probe
        try:
            table = rows_of(model)
            loop = asyncio.get_running_loop()
            call = partial(model.model.predict, table.matrix, proba=False)
            prediction = await loop.run_in_executor(self._executor, call)
            n = int(prediction.values.shape[0])
            error = None if n == table.rows else f"predicted {n} of {table.rows} rows"
            outcome = Outcome(error is None, model.package_id, table.rows, error, time.monotonic())
        except PackageError as exc:
            outcome = Outcome(False, model.package_id, 0, str(exc), time.monotonic())
        finally:
            release(model)
        # Outcomes of retired models are dropped: ids may be reused by new objects.
        self._last = {k: v for k, v in self._last.items() if k in self._live()}
        self._last[id(model)] = outcome
        return outcome

    def _live(self) -> set[int]:
        return {id(d.champion) for d in self._registry.all()}


def rows_of(model: ServedModel) -> Table:
    """The champion's sample rows, or one row of neutral values of its features' types."""
    samples = model.model.samples()
    if samples is not None:
        return samples
    manifest = model.model.manifest
    return model.model.schema.from_rows([{f.name: _NEUTRAL[f.type] for f in manifest.features}])
