"""The example third-party plugin (``examples/directory-plugin``) passes the conformance suite."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from pilothouse.agent.errors import HubRejectedError, HubUnreachableError
from pilothouse.agent.plugin import FetchedPackage, Plugin
from tests.plugins import example
from tests.plugins.conformance import Conformance, Harness

pytestmark = pytest.mark.anyio


class DirectoryHarness:
    """A hub at the seam: two packages it serves, one it refuses, one while it is down."""

    model_a = "m-a"
    model_b = "m-b"
    broken_model = "m-deleted"
    unavailable_model = "m-later"
    timeout_s = 5.0

    def __init__(self, tmp: Path) -> None:
        self._dir = tmp / "published"
        self.bad_setting = (
            {"directory": str(self._dir), "watch_interval_s": 0},
            "watch_interval_s",
        )

    async def fetch_package(self, model_package_id: str) -> FetchedPackage:
        if model_package_id == self.broken_model:
            raise HubRejectedError(f"404: no model package {model_package_id!r}", status=404)
        if model_package_id == self.unavailable_model:
            raise HubUnreachableError("hub unreachable: connection refused")
        digest = hashlib.sha256(model_package_id.encode()).hexdigest()
        return FetchedPackage(model_package_id, self._dir / f"{digest}.tar.gz", digest)

    def make_plugin(self) -> Plugin:
        plugin: Plugin = example.load().DirectoryPlugin()
        return plugin

    def settings(self) -> dict[str, Any]:
        return {"directory": str(self._dir), "watch_interval_s": 0.05}

    async def footprint(self, plugin: Plugin) -> list[str]:
        return sorted(p.name for p in self._dir.glob("*.json"))

    async def leftovers(self, plugin: Plugin, deployment_id: str) -> list[str]:
        path = self._dir / f"{deployment_id}.json"
        return [str(path)] if path.exists() else []

    async def cleanup(self, plugins: list[Plugin]) -> None:
        """Files only, under the test's temporary directory."""


class TestDirectoryPlugin(Conformance):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Harness:
        return DirectoryHarness(tmp_path)
