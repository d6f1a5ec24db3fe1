"""A plugin without a prediction server is never asked for statistics, however many deployments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from pilothouse.agent.monitoring.relay import StatisticsRelay
from pilothouse.agent.settings import MonitoringSettings
from pilothouse.plugins.simulated import SimulatedPlugin, SimulatedPluginSettings

pytestmark = pytest.mark.anyio

SERVED = [f"dep-{i}" for i in range(1000)]


class Answering(SimulatedPlugin):
    """The simulated plugin with a server that answers nothing yet (it overrides statistics)."""

    asked = 0

    async def statistics(
        self, deployment_id: str, *, server: str | None = None, associations_after: int | None = 0
    ) -> Mapping[str, Any] | None:
        """Count the question; nothing serves it."""
        Answering.asked += 1
        return None


async def test_a_plugin_without_statistics_is_not_asked() -> None:
    relay = StatisticsRelay(
        SimulatedPlugin(SimulatedPluginSettings()), lambda: SERVED, MonitoringSettings(), None
    )
    assert relay.readable is False

    async def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("asked for statistics")

    relay.read = never  # type: ignore[method-assign]
    assert await relay.relay_all() == 0


async def test_a_plugin_with_statistics_is_asked_for_each_served_deployment() -> None:
    relay = StatisticsRelay(
        Answering(SimulatedPluginSettings()), lambda: SERVED, MonitoringSettings(), None
    )
    assert relay.readable is True
    Answering.asked = 0
    assert await relay.relay_all() == 0
    assert Answering.asked == len(SERVED)
