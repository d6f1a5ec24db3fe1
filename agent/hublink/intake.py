"""The hub intake: desired state from the hub, live.

It fetches the PE's snapshot (handed to the dispatcher whole, so removals are
seen), then follows the watch stream (Server-Sent Events) from the snapshot's
revision, turning each message into a single change. When the stream breaks —
its hub replica died, say — it reconnects with backoff, to the next replica if
that one cannot be reached (:class:`~.client.HubClient`), and resumes the
stream after the last revision it received (``Last-Event-ID``): the hub replays
every change it missed, so nothing is lost and no snapshot is needed. The
hub's ``resync`` message (it cannot replay from there) fetches a fresh
snapshot first, as does the first start.
When the stream keeps failing while plain requests work (a proxy that does
not pass SSE, say), the intake falls back to polling the snapshot every
``hub.poll_interval_s`` and tries the stream again after each poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pydantic import BaseModel, Field, ValidationError

from pilothouse.agent.errors import HubAuthError, HubError
from pilothouse.agent.events.bus import EventBus
from pilothouse.agent.hublink.client import HubClient, WatchMessage
from pilothouse.agent.settings import HubLinkSettings
from pilothouse.agent.workers.intake_queue import IntakeQueue
from pilothouse.foundation.aio.backoff import Backoff
from pilothouse.foundation.domain.changes import Change, Snapshot
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import Status

log = logging.getLogger("pilothouse.hublink.intake")

_STREAM_FAILURES_BEFORE_POLLING = 3


class _Resync(Exception):
    """The hub asked for a fresh snapshot."""


class HubIntake:
    """Feeds the dispatcher from the hub."""

    def __init__(
        self, client: HubClient, pe: str, settings: HubLinkSettings, out: IntakeQueue, bus: EventBus
    ) -> None:
        self._client = client
        self._pe = pe
        self._settings = settings
        self._out = out
        self._bus = bus
        self._backoff = Backoff(0.5, settings.reconnect_backoff_max_s)
        self._revision: int | None = None
        self._stream_failures = 0
        self._down = False

    async def run(self, started: Callable[[], None]) -> None:
        """Follow the hub until cancelled."""
        started()
        attempt = 0
        while True:
            try:
                if self._revision is None or self._polling():
                    await self._sync()
                    attempt = 0
                await self._follow()
                attempt = 0  # the stream ended (its replica stopped): resume at once
            except _Resync:
                self._revision = None
                continue
            except HubError as exc:
                self._trouble(exc)
            await asyncio.sleep(self._delay(attempt))
            attempt += 1

    async def _sync(self) -> None:
        snap = await self._client.desired_state(self._pe)
        self._revision = snap.revision
        self._out.put(Snapshot({d.id: d for d in snap.deployments}, source="hub"))
        self._connected(f"desired state received from the hub (revision {snap.revision})")

    def _connected(self, message: str) -> None:
        if self._down:
            self._down = False
            self._bus.report("agent.hub_connected", Status.PASSING, message)

    def _polling(self) -> bool:
        return self._stream_failures >= _STREAM_FAILURES_BEFORE_POLLING

    async def _follow(self) -> None:
        try:
            async for message in self._client.watch(self._pe, self._revision):
                self._stream_failures = 0
                self._connected(f"watching the hub again from revision {self._revision}")
                self._handle(message)
        except HubError:
            self._stream_failures += 1
            raise

    def _handle(self, message: WatchMessage) -> None:
        if message.event == "resync":
            raise _Resync
        if message.event not in ("deployment", "removed"):
            return
        try:
            if message.event == "deployment":
                dep = DesiredDeployment.model_validate_json(message.data)
                self._out.put(Change(dep.id, dep, dep.generation))
            else:
                removed = _Removed.model_validate_json(message.data)
                self._out.put(Change(removed.id, None, removed.generation))
        except ValidationError as exc:
            log.error("hub sent an invalid %s message, resyncing: %s", message.event, exc)
            raise _Resync from None
        if message.id is not None and message.id.isdigit():
            self._revision = int(message.id)

    def _delay(self, attempt: int) -> float:
        if self._polling():
            return self._settings.poll_interval_s  # polling fallback: a snapshot per period
        return self._backoff.delay(attempt)

    def _trouble(self, exc: HubError) -> None:
        log.warning("hub link: %s", exc)
        if self._down:
            return
        self._down = True
        status = Status.FAILING if isinstance(exc, HubAuthError) else Status.AT_RISK
        self._bus.report(
            "agent.hub_disconnected",
            status,
            f"cannot follow the hub's desired state ({exc}); retrying",
        )


class _Removed(BaseModel):
    """A removal message: the deployment's id and the generation that removed it."""

    id: str
    generation: int = Field(ge=0)
