"""The ``kubernetes`` plugin passes the conformance suite (emulator, or KUBECONFIG's cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.agent.plugin import Plugin
from pilothouse.plugins.kubernetes import KubernetesPlugin, names
from tests.kubernetes.conftest import Cluster
from tests.kubernetes.support import packages, unreachable_hub
from tests.modelpkg.factory import SETOSA, VIRGINICA
from tests.plugins.conformance import PE, Harness, ServingConformance

pytestmark = pytest.mark.anyio


class KubernetesHarness:
    """Python-format packages in ConfigMaps; pods are the test kubelet's real servers."""

    model_a, model_b, broken_model, unavailable_model = "rules", "rules-2", "broken", "on-the-hub"
    bad_setting = ({"namespace": "Not A Namespace"}, "namespace")
    rows = [SETOSA, VIRGINICA]
    timeout_s = 60.0
    fetch_package = staticmethod(unreachable_hub)

    def __init__(self, cluster: Cluster, tmp: Path) -> None:
        self._cluster = cluster
        self._packages = packages(tmp)

    def make_plugin(self) -> Plugin:
        return KubernetesPlugin()

    def settings(self) -> dict[str, Any]:
        return self._cluster.settings(
            packages={k: str(v) for k, v in self._packages.items()}, progress_deadline_s=6
        )

    async def footprint(self, plugin: Plugin) -> list[str]:
        assert isinstance(plugin, KubernetesPlugin)
        return sorted(plugin.observer.pods.objects)

    async def leftovers(self, plugin: Plugin, deployment_id: str) -> list[str]:
        assert isinstance(plugin, KubernetesPlugin)
        name = names.object_name(deployment_id)
        api = self._cluster.emulator
        ns = self._cluster.namespace
        return [
            f"{r} {o['metadata']['name']}"
            for r in (
                "apps/v1/deployments",
                "v1/services",
                "v1/pods",
                "v1/configmaps",
                "networking.k8s.io/v1/ingresses",
            )
            for o in api.all(r, ns)
            if o["metadata"]["name"].startswith(name + "-") or o["metadata"]["name"] == name
        ]

    async def cleanup(self, plugins: list[Plugin]) -> None:
        """The cluster fixture stops every pod; nothing else outlives the test."""


class TestKubernetes(ServingConformance):
    @pytest.fixture
    def harness(self, cluster: Cluster, tmp_path: Path) -> Harness:
        assert PE
        return KubernetesHarness(cluster, tmp_path)
