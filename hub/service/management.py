"""The *Use Management Agent* switch of a prediction environment.

The product this follows lets an operator register a PE and decide whether a
management agent drives it. Here the switch says whether the PE's agent hears
of changes: while it is off the agent keeps running what it had (its desired
state is frozen where it was), deployments of the PE may still be changed and
every change is recorded, and turning the switch on again sends what changed
meanwhile. Each switch is an event of the PE, from the ``user`` source.
"""

from __future__ import annotations

from functools import partial

from pilothouse.foundation.domain.events import new_id as new_event_id
from pilothouse.foundation.domain.vocabulary import Source, Status
from pilothouse.hub import clock
from pilothouse.hub.api.schemas import EventIn, PredictionEnvironment, PredictionEnvironmentUpdate
from pilothouse.hub.store.interface import Store

ENABLED = "environment.management_agent_enabled"
DISABLED = "environment.management_agent_disabled"


class ManagementSwitch:
    """Change what may be changed of a PE: today, its Use Management Agent switch."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def update(self, pe_id: str, body: PredictionEnvironmentUpdate) -> PredictionEnvironment:
        """Apply ``body`` to the PE and answer with the PE as it is now."""
        env = await self._store.get_environment(pe_id)
        wanted = body.use_management_agent
        if wanted is None or wanted == env.use_management_agent:
            return env
        await self._store.set_management_agent(pe_id, wanted, clock.now_us(), partial(_event, env))
        return await self._store.get_environment(pe_id)


def _event(env: PredictionEnvironment, enabled: bool) -> EventIn:
    if enabled:
        message = (
            f"{env.name}: Use Management Agent turned on; its agent receives the changes "
            "made while it was off"
        )
    else:
        message = (
            f"{env.name}: Use Management Agent turned off; its agent receives no "
            "desired-state changes until it is turned on again"
        )
    return EventIn(
        id=new_event_id(),
        time=clock.now(),
        prediction_environment_id=env.id,
        source=Source.USER,
        type=ENABLED if enabled else DISABLED,
        status=Status.INFORMATIONAL,
        message=message,
        data={"use_management_agent": enabled},
    )
