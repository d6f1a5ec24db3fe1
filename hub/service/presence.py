"""Agent presence: heartbeats in, ``agent.offline`` / ``agent.online`` events out.

A heartbeat marks the PE's agent online (recording ``agent.online``, status
``passing``, when it was not). The *presence watcher* — a guarded background
task — checks a few times per ``heartbeat_timeout_s`` and marks offline every
agent silent for longer, recording ``agent.offline`` (``failing``, source
``hub``). Both transitions are single conditional updates, so several hub
replicas over one database record each transition once.
"""

from __future__ import annotations

import asyncio
import logging

from pilothouse.foundation.domain.events import new_id
from pilothouse.foundation.domain.vocabulary import Source, Status
from pilothouse.hub import clock
from pilothouse.hub.api.schemas import EventIn, Heartbeat
from pilothouse.hub.settings import AgentLinkSettings
from pilothouse.hub.store.interface import Store

log = logging.getLogger("pilothouse.hub.presence")

CHECKS_PER_TIMEOUT = 4


class Presence:
    """Tracks which agents are alive."""

    def __init__(self, store: Store, settings: AgentLinkSettings) -> None:
        self._store = store
        self._timeout_s = settings.heartbeat_timeout_s

    async def heartbeat(self, pe_id: str, beat: Heartbeat) -> None:
        """Note a heartbeat of ``pe_id``'s agent."""
        info = beat.model_dump(mode="json")
        came_online = await self._store.record_heartbeat(
            pe_id, clock.now_us(), info, lambda: _online(pe_id)
        )
        if came_online:
            log.info("agent of prediction environment %s is online", pe_id)

    async def sweep(self) -> list[str]:
        """Mark offline the agents silent for longer than the timeout; return their PEs."""
        cutoff = clock.now_us() - int(self._timeout_s * 1_000_000)
        gone = await self._store.mark_offline(
            cutoff, lambda pe_id: _offline(pe_id, self._timeout_s)
        )
        for pe_id in gone:
            log.warning("agent of prediction environment %s is offline", pe_id)
        return gone

    async def watch(self) -> None:
        """Sweep a few times per timeout, forever (run it guarded)."""
        while True:
            await asyncio.sleep(self._timeout_s / CHECKS_PER_TIMEOUT)
            await self.sweep()


def _online(pe_id: str) -> EventIn:
    return _event(pe_id, "agent.online", Status.PASSING, "the agent is online", {})


def _offline(pe_id: str, timeout_s: float) -> EventIn:
    message = f"no heartbeat from the agent for more than {timeout_s:g}s"
    return _event(pe_id, "agent.offline", Status.FAILING, message, {"timeout_s": timeout_s})


def _event(pe_id: str, kind: str, status: Status, message: str, data: dict[str, float]) -> EventIn:
    return EventIn(
        id=new_id(),
        time=clock.now(),
        prediction_environment_id=pe_id,
        source=Source.HUB,
        type=kind,
        status=status,
        message=message,
        data=data,
    )
