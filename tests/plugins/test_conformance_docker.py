"""The ``docker`` plugin passes the conformance suite on the real engine, in both modes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.agent.errors import HubUnreachableError
from pilothouse.agent.plugin import FetchedPackage, Plugin
from pilothouse.plugins.docker import DockerPlugin
from tests.docker.support import ROWS, RULES, TIMEOUT, new_owner, owned, purge, rules_2, settings
from tests.docker_support import docker_engine, pilothouse_image
from tests.plugins.conformance import Harness, ServingConformance
from tests.process.support import broken_at_load

__all__ = ["docker_engine", "pilothouse_image"]

pytestmark = pytest.mark.anyio


class DockerHarness:
    """Python-format packages (they load in a blink) in containers of the session's image."""

    model_a = "rules"
    model_b = "rules-2"
    broken_model = "broken"
    unavailable_model = "on-the-hub"
    bad_setting = ({"restart_policy": "sometimes"}, "restart_policy")
    rows = ROWS
    timeout_s = TIMEOUT

    def __init__(self, tmp: Path, mode: str, image: str) -> None:
        self._mode = mode
        self._image = image
        self.owner = new_owner()
        self._packages = {
            self.model_a: RULES,
            self.model_b: rules_2(tmp),
            self.broken_model: broken_at_load(tmp / "broken"),
        }

    async def fetch_package(self, model_package_id: str) -> FetchedPackage:
        """A hub that does not answer: packages not configured locally are unavailable."""
        raise HubUnreachableError(f"hub unreachable while fetching {model_package_id}")

    def make_plugin(self) -> Plugin:
        return DockerPlugin()

    def settings(self) -> dict[str, Any]:
        return settings(self._image, self.owner, mode=self._mode, packages=self._packages)

    async def footprint(self, plugin: Plugin) -> list[str]:
        containers, volumes = await owned(self.owner)
        return sorted(f"container {c['Id'][:12]}" for c in containers) + sorted(volumes)

    async def leftovers(self, plugin: Plugin, deployment_id: str) -> list[str]:
        assert isinstance(plugin, DockerPlugin)
        left = [
            f"loaded on server {key!r}"
            for key, server in plugin.servers.items()
            if server.api is not None
            and plugin.runtime.alive(server)
            and deployment_id in {d["id"] for d in await server.api.deployments()}
        ]
        containers, volumes = await owned(self.owner)
        left += [
            f"container {c['Names'][0]}"
            for c in containers
            if c["Labels"].get("io.pilothouse.deployment") == deployment_id
        ]
        left += [f"volume {v}" for v in volumes if f"-{deployment_id}-" in v]
        return left

    async def cleanup(self, plugins: list[Plugin]) -> None:
        """Remove every container and volume of this test's owner."""
        await purge(self.owner)


class TestDockerShared(ServingConformance):
    @pytest.fixture
    def harness(self, tmp_path: Path, pilothouse_image: str) -> Harness:
        return DockerHarness(tmp_path, "shared", pilothouse_image)


class TestDockerDedicated(ServingConformance):
    @pytest.fixture
    def harness(self, tmp_path: Path, pilothouse_image: str) -> Harness:
        return DockerHarness(tmp_path, "dedicated", pilothouse_image)
