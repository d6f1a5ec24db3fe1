"""The event shipper: from the durable outbox to the hub, in order, in batches.

One batch is in flight at a time, so the hub receives events in the order they
were made. A batch is deleted from the outbox only after the hub accepted it;
while the hub is unreachable the shipper backs off (1 s doubling to the
configured maximum) and the outbox grows. A batch the hub refuses as invalid
(422) is split in halves until the offending events are isolated; those are
logged and dropped, so one bad event never blocks the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pilothouse.agent.errors import HubAuthError, HubRejectedError, HubUnreachableError
from pilothouse.agent.hublink.client import HubClient
from pilothouse.agent.hublink.outbox import Outbox
from pilothouse.foundation.aio import durable_queue
from pilothouse.foundation.aio.backoff import Backoff
from pilothouse.foundation.domain.vocabulary import Status

log = logging.getLogger("pilothouse.hublink.shipper")

Report = Callable[[str, Status, str], None]


class EventShipper:
    """Delivers the outbox to the hub."""

    def __init__(
        self,
        outbox: Outbox,
        client: HubClient,
        batch_size: int,
        backoff_max_s: float,
        report: Report,
    ) -> None:
        self._outbox = outbox
        self._client = client
        self._batch = batch_size
        self._backoff = Backoff(1.0, backoff_max_s)
        self._report = report
        self._failing = False

    async def run(self, started: Callable[[], None]) -> None:
        """Ship until cancelled."""
        started()
        await durable_queue.drain(
            self.ship_once,
            self._outbox.appended,
            self._backoff.delay,
            retry_on=(HubUnreachableError, HubAuthError),
            on_retry=self._outage,
        )

    async def ship_once(self) -> bool:
        """Deliver the oldest batch; False when the outbox is empty."""
        pending = await self._outbox.peek(self._batch)
        if pending is None:
            return False
        await self._post(pending.bodies)
        await self._outbox.ack(pending)
        if self._failing:
            self._failing = False
            self._report(
                "agent.hub_reachable",
                Status.PASSING,
                f"events reach the hub again ({self._outbox.size_bytes} bytes still queued)",
            )
        return True

    async def drain(self, timeout_s: float) -> bool:
        """Deliver everything queued within ``timeout_s``; True if the outbox emptied."""
        try:
            async with asyncio.timeout(timeout_s):
                while await self.ship_once():
                    pass
        except (TimeoutError, HubUnreachableError, HubAuthError) as exc:
            log.warning("outbox not drained at shutdown (%s); it is kept on disk", exc)
            return False
        return True

    async def _post(self, bodies: list[bytes]) -> None:
        try:
            await self._client.post_events(bodies)
        except HubAuthError:
            raise
        except HubRejectedError as exc:
            if len(bodies) == 1:
                log.error("hub refused an event, dropping it: %s: %s", exc, bodies[0][:500])
                return
            half = len(bodies) // 2
            await self._post(bodies[:half])
            await self._post(bodies[half:])

    def _outage(self, exc: Exception) -> None:
        if self._failing:
            return
        self._failing = True
        status = Status.FAILING if isinstance(exc, HubAuthError) else Status.AT_RISK
        self._report(
            "agent.hub_unreachable",
            status,
            f"events cannot reach the hub ({exc}); they wait in the outbox",
        )
