"""The rollback guard of a plugin without a prediction server: no polling; watches still end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.agent import DesiredDeployment, DesiredState
from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.desired import DeploymentSettings, RollbackSettings
from pilothouse.plugins.simulated import SimulatedPlugin, SimulatedPluginSettings
from tests.helpers import eventually, running, written_through

pytestmark = pytest.mark.anyio

GUARD_S = 1.0


def _state(model: str) -> DesiredState:
    rules = RollbackSettings(guard_s=GUARD_S, min_requests=1)
    settings = DeploymentSettings(rollback=rules)
    return DesiredState(
        deployments=tuple(
            DesiredDeployment(id=f"d{i}", model_package_id=model, settings=settings)
            for i in range(20)
        )
    )


async def test_watches_end_at_their_deadline_without_a_look_every_poll(
    make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings(monitoring={"guard_poll_s": 0.02})
    agent = Agent(settings, plugin=SimulatedPlugin(SimulatedPluginSettings()))
    async with running(agent):
        agent.apply(_state("m1"))
        await agent.wait_settled()
        assert agent.monitoring is not None and agent.monitoring.guard is not None
        guard = agent.monitoring.guard
        looks = 0
        check_all = guard.check_all

        async def counted() -> None:
            nonlocal looks
            looks += 1
            await check_all()

        guard.check_all = counted  # type: ignore[method-assign]
        agent.apply(_state("m2"))
        await agent.wait_settled()
        await eventually(lambda: len(guard.watching()) == 20)
        await eventually(lambda: not guard.watching(), timeout=GUARD_S + 5)
        events = await written_through(agent)
    passed = [e for e in events if e["type"] == "deployment.guard_passed"]
    assert sorted(e["deployment_id"] for e in passed) == sorted(f"d{i}" for i in range(20))
    # polled every 0.02 s, a second of watching would be ~50 looks; each replacement's wake
    # may add one, and the deadline one or two
    assert looks <= 25, looks
