"""The ``process`` plugin passes the conformance suite, with a shared server and dedicated ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.agent.errors import HubUnreachableError
from pilothouse.agent.plugin import FetchedPackage, Plugin
from pilothouse.plugins.fleet import SHARED
from pilothouse.plugins.process import ProcessPlugin
from pilothouse.plugins.process.servers import load_records
from tests.modelpkg.factory import SETOSA, VIRGINICA, python_package
from tests.plugins.conformance import Harness, ServingConformance
from tests.process.support import (
    RULES,
    TIMEOUT,
    broken_at_load,
    kill_and_reap,
    pids_naming,
    release,
    serve_pids,
)

pytestmark = pytest.mark.anyio


class ProcessHarness:
    """Python-format packages (servers start in well under a second) on a real machine."""

    model_a = "rules"
    model_b = "rules-2"
    broken_model = "broken"
    unavailable_model = "on-the-hub"
    bad_setting = ({"mode": "everywhere"}, "mode")
    rows = [SETOSA, VIRGINICA]
    timeout_s = TIMEOUT

    def __init__(self, tmp: Path, mode: str) -> None:
        self._tmp = tmp
        self._mode = mode
        self._packages = {
            self.model_a: RULES,
            self.model_b: python_package(tmp / "rules-2", name="iris-rules-2"),
            self.broken_model: broken_at_load(tmp / "broken"),
        }

    async def fetch_package(self, model_package_id: str) -> FetchedPackage:
        """A hub that does not answer: packages not configured locally are unavailable."""
        raise HubUnreachableError(f"hub unreachable while fetching {model_package_id}")

    def make_plugin(self) -> Plugin:
        return ProcessPlugin()

    def settings(self) -> dict[str, Any]:
        return {"packages": self._packages, "mode": self._mode, "check_interval_s": 0.2}

    async def footprint(self, plugin: Plugin) -> list[str]:
        return [f"pid {pid}" for pid in serve_pids(self._tmp)]

    async def leftovers(self, plugin: Plugin, deployment_id: str) -> list[str]:
        assert isinstance(plugin, ProcessPlugin)
        left = [f"loaded on server {key!r}" for key, server in plugin.servers.items()
                if server.api is not None and server.alive()
                and deployment_id in {d["id"] for d in await server.api.deployments()}]  # fmt: skip
        if self._mode == "dedicated":
            own = f"servers/{deployment_id}"
            left += [
                f"pid {p} of its server" for p in pids_naming(own) if p in serve_pids(self._tmp)
            ]
            records = load_records(self._tmp / "conformance-state" / "servers.json")
            left += [f"record of server {key!r}" for key in records if key == deployment_id]
            left += (
                [f"server {deployment_id!r} still known"] if deployment_id in plugin.servers else []
            )
        elif deployment_id in plugin.servers or list(plugin.servers) not in ([], [SHARED]):
            left.append(f"servers known: {sorted(plugin.servers)}")
        return left

    async def cleanup(self, plugins: list[Plugin]) -> None:
        """Kill and reap every server the plugins started, then anything else left."""
        for plugin in plugins:
            assert isinstance(plugin, ProcessPlugin)
            await release(*plugin.servers.values())
        await kill_and_reap(self._tmp)


class TestProcessShared(ServingConformance):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Harness:
        return ProcessHarness(tmp_path, "shared")


class TestProcessDedicated(ServingConformance):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Harness:
        return ProcessHarness(tmp_path, "dedicated")
