"""Taking statistics windows in: checks, idempotent storage, drift judged on the way.

A batch is refused whole, nothing stored, when any window may not be: an
agent token speaks only for its own PE, so a window of another PE's
deployment is 403 naming ``windows.N.deployment_id`` (404 for a deployment
the hub never had); a window ending further ahead of the hub's clock than the
clock-skew allowance, or older than events may be, is 422 naming its field.
Each window is stored once by id: a batch delivered again is answered with its
windows counted as duplicates. The first ``monitoring.max_associations_per_window``
predicted rows of each new window are kept for joining actuals.

After storing, each deployment that got new windows has its drift judged over
the ``drift.window_s`` before its newest window's end (the agent's clock, not the
hub's: a backlog delivered after an outage is judged as it was then), on the
champion package of that newest window. A change of status is recorded with a
``deployment.drift_changed`` event (source ``monitor``), which the service-health
rule weighs against the agent's own reports.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import orjson

from pilothouse.foundation.domain.desired import DriftSettings
from pilothouse.foundation.domain.events import new_id
from pilothouse.foundation.domain.monitoring import StatsBatch, StatsWindow, merge
from pilothouse.foundation.domain.vocabulary import Source, Status
from pilothouse.hub import clock
from pilothouse.hub.api.schemas import EventIn, StatsBatchResult
from pilothouse.hub.errors import FieldProblem, Forbidden, InvalidInput, NotFound
from pilothouse.hub.monitoring import drift
from pilothouse.hub.monitoring.retraining import Retraining
from pilothouse.hub.service.auth import Principal
from pilothouse.hub.settings import EventSettings, MonitoringSettings
from pilothouse.hub.store.interface import Store
from pilothouse.hub.store.records import DeploymentRecord, StoredAssociation, StoredWindow

log = logging.getLogger("pilothouse.hub.monitoring")

DRIFT_CHANGED = "deployment.drift_changed"


class Ingest:
    """Stores statistics windows and judges drift."""

    def __init__(
        self,
        store: Store,
        settings: MonitoringSettings,
        times: EventSettings,
        retraining: Retraining,
    ) -> None:
        self._store = store
        self._settings = settings
        self._ahead_us = round(times.max_clock_skew_s * 1_000_000)
        self._behind_us = round(times.max_age_days * 86_400 * 1_000_000)
        self._retraining = retraining

    async def ingest(self, batch: StatsBatch, who: Principal) -> StatsBatchResult:
        """Store the batch's new windows; refuse it whole if any window may not be."""
        self._check_times(batch.windows)
        await self._check_deployments(batch.windows, who)
        rows, associations = await asyncio.to_thread(
            _stored, batch.windows, self._settings.max_associations_per_window
        )
        new = set(await self._store.add_windows(rows, associations)) if rows else set()
        newest: dict[str, StatsWindow] = {}
        for window in batch.windows:
            if window.id in new:
                held = newest.get(window.deployment_id)
                if held is None or window.end >= held.end:
                    newest[window.deployment_id] = window
        for window in newest.values():
            await self._judge(window)
        return StatsBatchResult(accepted=len(new), duplicates=len(batch.windows) - len(new))

    def _check_times(self, windows: Sequence[StatsWindow]) -> None:
        now = clock.now_us()
        for i, window in enumerate(windows):
            if clock.to_us(window.end) > now + self._ahead_us:
                raise InvalidInput.field(
                    f"windows.{i}.end", "is ahead of the hub's clock by more than the allowed skew"
                )
            if clock.to_us(window.start) < now - self._behind_us:
                raise InvalidInput.field(f"windows.{i}.start", "is older than the hub keeps")

    async def _check_deployments(self, windows: Sequence[StatsWindow], who: Principal) -> None:
        ids = {w.deployment_id for w in windows}
        owners = await self._store.deployment_environments(ids) if ids else {}
        for i, window in enumerate(windows):
            field = f"windows.{i}.deployment_id"
            owner = owners.get(window.deployment_id)
            if owner is None:
                raise NotFound.of("deployment", window.deployment_id, field)
            if not who.admin and owner != who.prediction_environment_id:
                message = (
                    f"deployment {window.deployment_id!r} is not of this agent's prediction "
                    "environment"
                )
                raise Forbidden(message, [FieldProblem(field, message, window.deployment_id)])

    async def _judge(self, newest: StatsWindow) -> None:
        try:
            record = await self._store.get_deployment(newest.deployment_id)
        except NotFound:
            return  # deleted: its late windows are kept, its status no longer matters
        settings = record.desired.settings.drift
        end_us = clock.to_us(newest.end)
        from_us = end_us - round(settings.window_s * 1_000_000)
        bodies = await self._store.window_bodies(newest.deployment_id, from_us, end_us)
        judgement = await asyncio.to_thread(_judged, bodies, newest.package_id, from_us, settings)
        if judgement is None:
            return
        state = await self._store.monitoring_state(newest.deployment_id)
        if state.drift_status is judgement.status:
            return
        event = _changed(record, state.drift_status, judgement)
        detail = judgement.detail()
        changed = await self._store.set_drift(
            newest.deployment_id, state.drift_status, judgement.status, detail, event
        )
        if changed and judgement.status is Status.FAILING:
            policy = record.desired.settings.retraining
            if policy.on_drift_failing:
                await self._retraining.trigger(record, "drift_failing", {"drift": detail})


def _stored(
    windows: Sequence[StatsWindow], max_associations: int
) -> tuple[list[StoredWindow], list[StoredAssociation]]:
    """Rows to store (CPU work: run in a thread)."""
    rows: list[StoredWindow] = []
    associations: list[StoredAssociation] = []
    for window in windows:
        start_us = clock.to_us(window.start)
        body = window.model_dump_json(exclude={"associations"})
        rows.append(
            StoredWindow(
                window.id,
                window.deployment_id,
                window.package_id,
                start_us,
                clock.to_us(window.end),
                body,
            )
        )
        kept = 0
        for association in window.associations:
            for row, prediction in enumerate(association.predictions):
                if kept >= max_associations:
                    break
                kept += 1
                associations.append(
                    StoredAssociation(
                        window.id,
                        window.deployment_id,
                        f"{association.request_id}:{row}",
                        window.package_id,
                        start_us,
                        orjson.dumps(prediction).decode(),
                    )
                )
    return rows, associations


def _judged(
    bodies: Sequence[str], package_id: str, from_us: int, settings: DriftSettings
) -> drift.Judgement | None:
    windows = [StatsWindow.model_validate_json(body) for body in bodies]
    recent = [w for w in windows if w.package_id == package_id and clock.to_us(w.end) > from_us]
    aggregates = merge(recent)
    return drift.judge(aggregates[0], settings) if aggregates else None


def _changed(record: DeploymentRecord, before: Status, judgement: drift.Judgement) -> EventIn:
    name = record.desired.name or record.desired.id
    data = judgement.detail() | {"previous": before.value}
    return EventIn(
        id=new_id(),
        time=clock.now(),
        prediction_environment_id=record.prediction_environment_id,
        deployment_id=record.desired.id,
        source=Source.MONITOR,
        type=DRIFT_CHANGED,
        status=judgement.status,
        message=f"{name}: {judgement.message()}",
        data=data,
    )
