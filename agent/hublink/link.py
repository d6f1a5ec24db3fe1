"""Everything hub mode adds to an agent, started and finished as one part.

In hub mode the desired state comes from the hub (instead of a file), events
go to a durable outbox and from there to the hub, observed states are PUT
after every change, and heartbeats are POSTed. :class:`HubLink` owns the
client, the outbox and the three tasks, so the runtime only decides *when*
they start and finish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pilothouse.agent.errors import ConfigError, HubError
from pilothouse.agent.events.bus import EventBus
from pilothouse.agent.hublink.client import HubClient
from pilothouse.agent.hublink.intake import HubIntake
from pilothouse.agent.hublink.outbox import Outbox
from pilothouse.agent.hublink.package_tokens import HubPackageTokens
from pilothouse.agent.hublink.packages import PackageCache
from pilothouse.agent.hublink.shipper import EventShipper
from pilothouse.agent.hublink.status import StatusReporter
from pilothouse.agent.settings import AgentSettings
from pilothouse.agent.workers.intake_queue import IntakeQueue
from pilothouse.agent.workers.records import DeploymentRecord
from pilothouse.foundation.domain.vocabulary import Status

log = logging.getLogger("pilothouse.hublink")

Start = Callable[[str, Callable[[Callable[[], None]], Awaitable[None]]], Awaitable[None]]


class HubLink:
    """The agent's connection to its hub."""

    def __init__(self, settings: AgentSettings, intake_queue: IntakeQueue) -> None:
        hub = settings.hub
        if hub.url is None or hub.token is None:
            raise ConfigError(
                ["hub.token: required when hub.url is set (an agent token of the PE)"]
            )
        if settings.intake.desired_state_file is not None:
            raise ConfigError(
                ["intake.desired_state_file: not used in hub mode; remove it or hub.url"]
            )
        self._settings = settings
        self._pe = settings.prediction_environment
        self._queue = intake_queue
        self.client = HubClient(
            hub.urls, hub.token.get_secret_value(), timeout_s=hub.request_timeout_s
        )
        self.outbox = Outbox(
            settings.state_dir / "outbox.db", hub.outbox_max_bytes, on_pressure=self._pressure
        )
        self.status = StatusReporter(self.client, hub.reconnect_backoff_max_s)
        self.packages = PackageCache(self.client, settings.state_dir / "packages")
        self.package_tokens = HubPackageTokens(self.client, self._pe)
        self._bus: EventBus | None = None
        self.shipper: EventShipper | None = None
        self.intake: HubIntake | None = None

    async def open(self) -> None:
        """Open the outbox (events may already wait in it from a previous run)."""
        await self.outbox.open()

    def observe(self, rec: DeploymentRecord) -> None:
        """The dispatcher's observed-state hook."""
        self.status.observe(rec)

    async def start(self, bus: EventBus, start: Start) -> None:
        """Start the shipper, the status reporter and the hub intake as supervised tasks."""
        hub = self._settings.hub
        self._bus = bus
        self.shipper = EventShipper(
            self.outbox, self.client, hub.batch_size, hub.reconnect_backoff_max_s, self._report
        )
        self.intake = HubIntake(self.client, self._pe, hub, self._queue, bus)
        await start("event shipper", self.shipper.run)
        await start("status reporter", self.status.run)
        await start("intake", self.intake.run)

    async def beat(self, payload: Mapping[str, Any]) -> None:
        """Heartbeat to the hub; an unreachable hub is reported by the other tasks."""
        body = {
            "agent_version": "pilothouse-agent",
            "deployments": payload.get("deployments", {}),
            "environment_status": payload.get("environment_status", "unknown"),
            "tasks": payload.get("tasks", {}),
        }
        try:
            await self.client.heartbeat(self._pe, body)
        except HubError as exc:
            log.warning("heartbeat not delivered: %s", exc)

    async def finish(self, timeout_s: float) -> None:
        """At shutdown, after the last event is in the outbox: deliver what can be, then close."""
        try:
            await _bounded(self.status.flush(), timeout_s)
            if self.shipper is not None:
                await self.shipper.drain(timeout_s)
        finally:
            await self.client.close()

    def _report(self, type_: str, status: Status, message: str) -> None:
        if self._bus is not None:
            self._bus.report(type_, status, message)

    def _pressure(self, type_: str, data: dict[str, Any]) -> None:
        if self._bus is None:
            return
        if type_ == "agent.outbox_overflow":
            self._bus.report(
                type_,
                Status.FAILING,
                f"event outbox full: dropped the {data['dropped']} oldest events",
                data=data,
            )
        else:
            self._bus.report(
                type_,
                Status.AT_RISK,
                f"event outbox at {data['bytes']} of {data['max_bytes']} bytes "
                "while the hub is unreachable",
                data=data,
            )


async def _bounded(work: Awaitable[None], timeout_s: float) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            await work
    except (TimeoutError, HubError) as exc:
        log.warning("not every observed state reached the hub before shutdown: %s", exc)
