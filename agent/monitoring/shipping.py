"""From the monitoring store to the hub: statistics windows, and rollback notices.

The **window shipper** posts the oldest windows as one ``StatsBatch`` to
``POST /api/v1/agent/monitoring`` and deletes them once the hub answered
(``{"accepted": n, "duplicates": m}``; the hub ingests by window id, so a
batch posted twice is stored once). While the hub is unreachable (no answer,
5xx, 401, 408, 429) it backs off and the store grows. Any other 4xx is
permanent for that batch: logged, reported as an ``agent.statistics_refused``
event, and the batch dropped so one bad batch never blocks the rest.

The **notice sender** tells the hub of each rollback with
``POST /api/v1/deployments/{id}/rollback``; a notice stays stored until the hub
answered. 409 means the desired champion is no longer the package rolled back
(a user changed it): the agent follows the hub's desired state, so the notice
is done; other 4xx are permanent (logged and reported, then dropped).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pilothouse.agent.errors import HubRejectedError, HubUnreachableError
from pilothouse.agent.hublink.client import HubClient
from pilothouse.agent.monitoring.store import MonitoringStore, Notice
from pilothouse.foundation.aio import durable_queue
from pilothouse.foundation.aio.backoff import Backoff
from pilothouse.foundation.domain.vocabulary import Status

log = logging.getLogger("pilothouse.monitoring")

RETRIED = frozenset({401, 408, 429})
"""Refusals that may pass later: the batch is kept and tried again."""
MAX_BATCH_BYTES = 8 * 1024 * 1024
"""About the largest upload: fewer windows per batch when they are big."""

Report = Callable[..., object]
"""``bus.report(type, status, message, deployment_id=..., data=...)``."""


class WindowShipper:
    """Delivers stored windows to the hub, oldest first."""

    def __init__(
        self,
        store: MonitoringStore,
        client: HubClient,
        batch: int,
        backoff_max_s: float,
        report: Report,
    ) -> None:
        self._store = store
        self._client = client
        self._batch = batch
        self._backoff = Backoff(1.0, backoff_max_s)
        self._report = report
        self.accepted = 0
        self.duplicates = 0
        self.refused = 0

    async def run(self, started: Callable[[], None]) -> None:
        """Ship until cancelled."""
        started()
        await durable_queue.drain(
            self.ship_once,
            self._store.windows_added,
            self._backoff.delay,
            retry_on=(HubUnreachableError,),
            on_retry=lambda exc: log.info("statistics wait for the hub: %s", exc),
        )

    async def ship_once(self) -> bool:
        """Deliver the oldest batch; False when nothing waits."""
        pending = await self._store.peek_windows(self._batch, MAX_BATCH_BYTES)
        if pending is None:
            return False
        try:
            answer = await self._client.post_monitoring(pending.bodies)
        except HubRejectedError as exc:
            if exc.status in RETRIED:
                raise HubUnreachableError(str(exc)) from exc
            self._refused(exc, len(pending.bodies))
        else:
            self.accepted += int(answer.get("accepted", 0))
            self.duplicates += int(answer.get("duplicates", 0))
        await self._store.ack_windows(pending)
        return True

    def _refused(self, exc: HubRejectedError, count: int) -> None:
        self.refused += count
        log.error("hub refused %d statistics windows, dropping them: %s", count, exc)
        self._report(
            "agent.statistics_refused",
            Status.AT_RISK,
            f"the hub refused {count} statistics windows ({exc}); they are dropped",
            data={"windows": count, "status": exc.status, "error": str(exc)},
        )


class NoticeSender:
    """Delivers rollback notices to the hub, and keeps them until it has them."""

    def __init__(
        self, store: MonitoringStore, client: HubClient, backoff_max_s: float, report: Report
    ) -> None:
        self._store = store
        self._client = client
        self._backoff = Backoff(1.0, backoff_max_s)
        self._report = report
        self.delivered = 0

    async def run(self, started: Callable[[], None]) -> None:
        """Send until cancelled."""
        started()
        await durable_queue.drain(
            self.send_all,
            self._store.notices_added,
            self._backoff.delay,
            retry_on=(HubUnreachableError,),
            on_retry=lambda exc: log.info("rollback notices wait for the hub: %s", exc),
        )

    async def send_all(self) -> bool:
        """Send every stored notice; False when there was none."""
        notices = await self._store.notices()
        for notice in notices:
            await self._send(notice)
        return bool(notices)

    async def _send(self, notice: Notice) -> None:
        dep = notice.deployment_id
        try:
            await self._client.post_rollback(dep, notice.body)
        except HubRejectedError as exc:
            if exc.status in RETRIED:
                raise HubUnreachableError(str(exc)) from exc
            if exc.status == 409:
                self._report(
                    "deployment.rollback_superseded",
                    Status.INFORMATIONAL,
                    f"{dep}: the hub's desired champion changed since the rollback; "
                    "following the hub's desired state",
                    deployment_id=dep,
                    data={"status": 409, "error": str(exc)},
                )
            else:
                log.error("hub refused the rollback notice of %s, dropping it: %s", dep, exc)
                self._report(
                    "deployment.rollback_not_recorded",
                    Status.AT_RISK,
                    f"{dep}: the hub refused to record the rollback ({exc})",
                    deployment_id=dep,
                    data={"status": exc.status, "error": str(exc)},
                )
        else:
            self.delivered += 1
        await self._store.ack_notice(notice)
