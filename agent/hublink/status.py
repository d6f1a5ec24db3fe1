"""Observed state to the hub: after every state change, the latest per deployment.

The dispatcher calls :meth:`StatusReporter.observe` synchronously after every
change; the reporter keeps only the newest observation of each deployment and
a task sends them. While the hub is unreachable observations coalesce (a
deployment that changed ten times is reported once, as it is now).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pilothouse.agent.errors import HubError, HubUnreachableError
from pilothouse.agent.hublink.client import HubClient
from pilothouse.agent.workers.records import DeploymentRecord
from pilothouse.foundation.aio.backoff import Backoff

log = logging.getLogger("pilothouse.hublink.status")


class StatusReporter:
    """Coalesces observed states and PUTs them to the hub."""

    def __init__(self, client: HubClient, backoff_max_s: float) -> None:
        self._client = client
        self._pending: dict[str, dict[str, Any]] = {}
        self._wake = asyncio.Event()
        self._backoff = Backoff(0.5, backoff_max_s)

    def observe(self, rec: DeploymentRecord) -> None:
        """Remember ``rec`` as it is now, to be sent."""
        body: dict[str, Any] = {
            "state": rec.state.value,
            "model_package_id": rec.model_package_id,
            "prediction_url": rec.prediction_url,
            "generation": rec.generation,
            "status": rec.status.value,
            "message": rec.message[:2000],
        }
        if rec.grpc_target is not None:
            # Only when there is one: a hub older than gRPC targets still takes the rest.
            body["grpc_target"] = rec.grpc_target
        self._pending[rec.id] = body
        self._wake.set()

    async def run(self, started: Callable[[], None]) -> None:
        """Send observations until cancelled."""
        started()
        attempt = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
                attempt = 0
            except HubUnreachableError:
                await asyncio.sleep(self._backoff.delay(attempt))
                attempt += 1
                self._wake.set()

    async def flush(self) -> None:
        """Send every pending observation; unsent ones stay pending on failure."""
        while self._pending:
            dep_id, body = next(iter(self._pending.items()))
            try:
                known = await self._client.put_status(dep_id, body)
            except HubUnreachableError:
                raise
            except HubError as exc:
                log.error("hub refused the status of %s: %s", dep_id, exc)
                known = True
            if self._pending.get(dep_id) is body:
                del self._pending[dep_id]
            if not known:
                log.info("hub no longer knows %s; its status is not reported", dep_id)
