"""The notification dispatcher: the background task that turns stored events into sent messages.

One guarded task ("notification dispatcher") loops over three steps, all of
whose state is in the database, so a hub that stops — cleanly or not — picks
up where it was on its next start and loses no notification:

1. **route** the events stored after the routing cursor into alert groups
   (:mod:`pilothouse.hub.notifications.routing`), a few hundred per transaction;
2. **flush** every group whose time has come into a message
   (:mod:`pilothouse.hub.notifications.composing`), stored as a pending delivery;
3. **send** due deliveries, each an owned task of the dispatcher's task group
   (at most ``notifications.concurrency`` at once). Each attempt is recorded;
   a failure that may pass is retried after a backoff, up to
   ``notifications.max_attempts``.

Then it waits on the clock until the next group or delivery is due, or until
woken: by the store after events are committed (ingest never waits for any of
this), by a finished send, by a change of the clock in tests.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

import aiohttp

from pilothouse.foundation.aio.backoff import Backoff
from pilothouse.hub.api.schemas import AttemptOutcome
from pilothouse.hub.clock import Clock, us
from pilothouse.hub.errors import StorageError
from pilothouse.hub.notifications import composing, routing, sealing, sending
from pilothouse.hub.notifications.sealing import Sealer
from pilothouse.hub.service import targets
from pilothouse.hub.settings import NotificationSettings
from pilothouse.hub.store.interface import Store
from pilothouse.hub.store.records import AttemptRecord, DeliveryJob
from pilothouse.hub.telemetry import HubMetrics

log = logging.getLogger("pilothouse.hub.notifications")

ROUTE_BATCH = 500
FLUSH_BATCH = 100
LEASE_MARGIN_S = 30.0


class Dispatcher:
    """Routes events into alert groups, flushes due groups, sends due deliveries."""

    def __init__(
        self,
        store: Store,
        http: aiohttp.ClientSession,
        sealer: Sealer,
        clock: Clock,
        settings: NotificationSettings,
        context: composing.Context,
        metrics: HubMetrics,
        wake: asyncio.Event,
        user_agent: str,
    ) -> None:
        self._store = store
        self._http = http
        self._sealer = sealer
        self._clock = clock
        self._settings = settings
        self._composer = partial(composing.compose, context=context)
        self._metrics = metrics
        self._wake = wake
        self._user_agent = user_agent
        self._backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s)
        self._lease_us = us(settings.timeout_s + LEASE_MARGIN_S)
        self._in_flight = 0

    def poke(self) -> None:
        """Look for work now (events were stored, a send finished, something changed)."""
        self._wake.set()

    async def run(self) -> None:
        """Route, flush and send until cancelled (run it guarded); cancelling stops every send."""
        self._in_flight = 0
        async with asyncio.TaskGroup() as sends:
            while True:
                self._wake.clear()
                await self._route()
                await self._flush()
                await self._claim(sends)
                await self._clock.wait(self._wake, await self._next_due())

    async def attempt(self, job: DeliveryJob) -> AttemptRecord:
        """Try to send one delivery once; the record says what happened and what comes next."""
        at_us = self._clock.now_us()
        number = job.attempts + 1
        outcome = await self._send(job)
        limit = job.max_attempts or self._settings.max_attempts
        if outcome.delivered:
            return _record(job, number, at_us, outcome, "delivered", None)
        if outcome.retryable and number < limit:
            delay = self._backoff.delay(number - 1, outcome.retry_after_s)
            next_us = self._clock.now_us() + us(delay)
            return _record(job, number, at_us, outcome, "retry", next_us)
        return _record(job, number, at_us, outcome, "failed", None)

    async def _send(self, job: DeliveryJob) -> sending.Outcome:
        try:
            url = self._sealer.unseal(job.url_sealed)
            secret = None if job.secret_sealed is None else self._sealer.unseal(job.secret_sealed)
        except StorageError as exc:
            return sending.Outcome(False, False, None, exc.message, 0.0)
        why = None if self._settings.allow_private_targets else targets.refusal(url)
        if why is not None:  # a channel made while the setting allowed it
            return sending.Outcome(False, False, None, f"not sent: {why}", 0.0)
        headers = sending.headers(job.id, job.kind, secret, job.body, self._user_agent)
        return await sending.attempt(
            self._http, url, job.body, headers, self._settings.timeout_s, sealing.masked(url)
        )

    async def _route(self) -> None:
        while (
            await self._store.route_events(self._clock.now_us(), ROUTE_BATCH, routing.route)
            == ROUTE_BATCH
        ):
            pass

    async def _flush(self) -> None:
        while (
            await self._store.flush_groups(self._clock.now_us(), FLUSH_BATCH, self._composer)
            == FLUSH_BATCH
        ):
            pass

    async def _claim(self, sends: asyncio.TaskGroup) -> None:
        free = self._settings.concurrency - self._in_flight
        if free <= 0:
            return
        jobs = await self._store.claim_deliveries(self._clock.now_us(), self._lease_us, free)
        for job in jobs:
            self._in_flight += 1
            sends.create_task(self._deliver(job), name=f"notification delivery {job.id}")

    async def _deliver(self, job: DeliveryJob) -> None:
        try:
            record = await self.attempt(job)
            await self._store.record_attempt(record)
            self._metrics.notification_attempts.labels(record.outcome).inc()
            if record.outcome != "delivered":
                log.warning(
                    "notification %s attempt %d: %s (%s)",
                    job.id,
                    record.number,
                    record.error,
                    record.outcome,
                )
        finally:
            self._in_flight -= 1
            self.poke()

    async def _next_due(self) -> int | None:
        if self._in_flight >= self._settings.concurrency:
            return None  # a finished send wakes the loop
        return await self._store.next_due()


def _record(
    job: DeliveryJob,
    number: int,
    at_us: int,
    outcome: sending.Outcome,
    verdict: AttemptOutcome,
    next_us: int | None,
) -> AttemptRecord:
    return AttemptRecord(
        delivery_id=job.id,
        number=number,
        at_us=at_us,
        duration_ms=outcome.duration_ms,
        outcome=verdict,
        http_status=outcome.http_status,
        error=outcome.error,
        next_attempt_us=next_us,
    )
