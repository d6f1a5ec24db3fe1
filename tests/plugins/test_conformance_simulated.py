"""The simulated (``test``) plugin passes the conformance suite; its infrastructure is a dict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.agent.plugin import Plugin
from pilothouse.plugins.simulated import SimulatedPlugin
from tests.plugins.conformance import Conformance, Harness

pytestmark = pytest.mark.anyio


class SimulatedHarness:
    """Known-behaving models by name; persisted to a state file so a restart adopts."""

    model_a = "m-a"
    model_b = "m-b"
    broken_model = "m-broken"
    unavailable_model = "m-unavailable"
    bad_setting = ({"temporary_failure_rate": 2}, "temporary_failure_rate")
    fetch_package = None
    timeout_s = 5.0

    def __init__(self, tmp: Path) -> None:
        self._state_file = tmp / "simulated.json"

    def make_plugin(self) -> Plugin:
        return SimulatedPlugin()

    def settings(self) -> dict[str, Any]:
        return {
            "fail_models": [self.broken_model],
            "unavailable_models": [self.unavailable_model],
            "state_file": str(self._state_file),
        }

    async def footprint(self, plugin: Plugin) -> list[str]:
        assert isinstance(plugin, SimulatedPlugin)
        return sorted(f"{d}={m}" for d, m in plugin.running().items())

    async def leftovers(self, plugin: Plugin, deployment_id: str) -> list[str]:
        assert isinstance(plugin, SimulatedPlugin)
        return [deployment_id] if deployment_id in plugin.running() else []

    async def cleanup(self, plugins: list[Plugin]) -> None:
        """Nothing outlives the test's temporary directory."""


class TestSimulatedPlugin(Conformance):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Harness:
        return SimulatedHarness(tmp_path)
