"""Event retention: how long events are kept, and the purge that enforces it.

The retention is ``retention.default_days`` until ``PUT /settings/retention``
stores another value in the database (it then wins, for every replica). An
event younger than the retention is never purged: each purge transaction
computes its cutoff from the retention stored at that moment.

The *retention purger* — a guarded background task — purges every
``purge_interval_s``, and at once after a ``PUT``. A purge removes the oldest
expired events ``purge_batch`` at a time, one short write transaction each
with a pause of ``purge_pause_s`` between them, so ingest and the API go on
while a million events are removed. It ends by recording an event,
``retention.purged`` (source ``hub``, PE ``hub``: it concerns the whole hub),
with the count removed.

The same purge keeps the prediction statistics: windows older than
``monitoring.minute_windows_hours`` are rolled up into hourly windows (added,
:mod:`pilothouse.hub.store.rollups`), and hourly windows, window ids and
associations older than the event retention are removed — in the same batches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

from pilothouse.foundation.domain.events import new_id
from pilothouse.foundation.domain.vocabulary import Source, Status
from pilothouse.hub import clock
from pilothouse.hub.api.schemas import EventIn, Retention
from pilothouse.hub.clock import Clock, us
from pilothouse.hub.settings import MonitoringSettings, RetentionSettings
from pilothouse.hub.store import rollups
from pilothouse.hub.store.interface import Store
from pilothouse.hub.store.records import RetentionState
from pilothouse.hub.telemetry import HubMetrics

log = logging.getLogger("pilothouse.hub.retention")

HUB_SCOPE = "hub"
"""The ``prediction_environment_id`` of events about the hub as a whole."""


class EventRetention:
    """Reads and sets the retention; purges what is older."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: RetentionSettings,
        metrics: HubMetrics,
        statistics: MonitoringSettings | None = None,
    ) -> None:
        self._store = store
        self._statistics = statistics or MonitoringSettings()
        self._clock = clock
        self._settings = settings
        self._metrics = metrics
        self._wake = asyncio.Event()
        # The schedule lives here, not in the task: a purger task that starts late
        # or is restarted after a failure keeps the next purge where it was.
        self._due_us = clock.now_us() + us(settings.purge_interval_s)

    async def get(self) -> Retention:
        """The retention in force and what the last purge did."""
        return self._view(await self._store.retention())

    async def set(self, days: int) -> Retention:
        """Set the retention and purge at once."""
        stored = await self._store.set_retention(days, self._clock.now_us())
        self._wake.set()
        return self._view(stored)

    async def purge(self) -> int:
        """Remove every event older than the retention, in batches; return how many."""
        began, removed = time.perf_counter(), 0
        batch, pause = self._settings.purge_batch, self._settings.purge_pause_s
        while True:
            now_us = self._clock.now_us()
            done = await self._store.purge_events(now_us, self._settings.default_days, batch)
            removed += done
            if done < batch:
                break
            await asyncio.sleep(pause)
        await self.keep_statistics()
        state = await self._store.retention()
        days = state.days or self._settings.default_days
        recorded = [_purged(now_us, removed, days, time.perf_counter() - began)] if removed else []
        await self._store.record_purge(now_us, removed, recorded)
        self._metrics.events_purged.inc(removed)
        if removed:
            log.info("purged %d events older than %d days", removed, days)
        return removed

    async def keep_statistics(self) -> tuple[int, int]:
        """Roll up old statistics windows into hours, purge expired ones; return both counts."""
        batch, pause = self._settings.purge_batch, self._settings.purge_pause_s
        rolled = removed = 0
        while True:
            before = self._clock.now_us() - us(self._statistics.minute_windows_hours * 3600)
            done = await self._store.roll_up_windows(before, batch, rollups.merge_bodies)
            rolled += done
            if done < batch:
                break
            await asyncio.sleep(pause)
        while True:
            now_us = self._clock.now_us()
            done = await self._store.purge_statistics(now_us, self._settings.default_days, batch)
            removed += done
            if done < batch:
                break
            await asyncio.sleep(pause)
        if rolled or removed:
            log.info("statistics: %d windows rolled up into hours, %d rows purged", rolled, removed)
        return rolled, removed

    async def watch(self) -> None:
        """Purge every interval, or at once when the retention is set, forever (run it guarded)."""
        interval = us(self._settings.purge_interval_s)
        while True:
            while not self._wake.is_set() and self._clock.now_us() < self._due_us:
                await self._clock.wait(self._wake, self._due_us)
            self._wake.clear()
            try:
                await self.purge()
            except BaseException:
                self._wake.set()  # not done: the restarted task purges again at once
                raise
            self._due_us = self._clock.now_us() + interval

    def _view(self, state: RetentionState) -> Retention:
        return Retention(
            days=state.days or self._settings.default_days,
            source="api" if state.days else "default",
            updated_at=None if state.updated_us is None else clock.from_us(state.updated_us),
            purge_interval_s=self._settings.purge_interval_s,
            last_purge_at=None
            if state.last_purge_us is None
            else clock.from_us(state.last_purge_us),
            last_purge_removed=state.last_purge_removed,
        )


def _time(us_or_none: int | None) -> datetime | None:
    return None if us_or_none is None else clock.from_us(us_or_none)


def _purged(now_us: int, removed: int, days: int, took_s: float) -> EventIn:
    return EventIn(
        id=new_id(),
        time=clock.from_us(now_us),
        prediction_environment_id=HUB_SCOPE,
        source=Source.HUB,
        type="retention.purged",
        status=Status.INFORMATIONAL,
        message=f"purged {removed} events older than {days} days",
        data={"removed": removed, "retention_days": days, "duration_s": round(took_s, 3)},
    )
